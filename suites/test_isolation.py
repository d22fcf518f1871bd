"""C31: the env of one code location never reaches the pods of another location's runs.

Each sample location sets DKC_LOCATION_ENV to its own name. A run of each location is checked in every pod
spec (run and step pods) and inside its processes (the report step's own view): the other location's value
must never be there. Both sample locations share one test Secret, so secrets are not told apart here.
"""

from __future__ import annotations

import pytest

from deploy.deployment import Deployment
from deploy.settings import LOCATION_ENV
from observation.runs import env_of
from suites.expected import sha256

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster, pytest.mark.c31]


def crossings(dagster: Deployment, own: str, others: list[str]) -> tuple[list[str], list[str]]:
    """(where another location's value shows in a run of ``own``, where ``own``'s value shows)."""
    run_id = dagster.run_to_success("report", location=own)
    found = dagster.footprint(run_id)
    assert found.run_pods, f"no run pod of run {run_id}"
    crossed, seen = [], []
    for pod in found.pods:
        value = env_of(pod.spec.containers[0]).get(LOCATION_ENV)
        if value in others:
            crossed.append(f"pod {pod.metadata.name} spec has {LOCATION_ENV}={value}")
        elif value == own:
            seen.append(f"pod {pod.metadata.name}")
    for step, report in dagster.step_reports(run_id).items():
        value = report.get(f"env {LOCATION_ENV}")
        crossed += [f"step {step}'s process sees {LOCATION_ENV}={other}" for other in others if value == sha256(other)]
        if value == sha256(own):
            seen.append(f"step {step}'s process")
    return crossed, seen


def test_one_locations_env_never_reaches_another_locations_pods(
    dagster: Deployment, record_property: pytest.RecordProperty,
) -> None:
    names = [location.name for location in dagster.settings.code_locations]
    without = [location.name for location in dagster.settings.code_locations
               if (LOCATION_ENV, location.name) not in location.env]
    if without:
        pytest.skip(f"code location(s) {', '.join(without)} do not set {LOCATION_ENV} to their name (sample "
                    f"locations installed before C31: add them again with the values `./dkc sample-location` prints)")
    found: dict[str, tuple[list[str], list[str]]] = {
        own: crossings(dagster, own, [name for name in names if name != own]) for own in names}
    for own, (_, seen) in found.items():
        record_property(f"{own}_own_env_seen_in", "; ".join(seen) or "nowhere")

    crossed = [where for crossed, _ in found.values() for where in crossed]
    assert not crossed, f"one location's env reached another's pods: {'; '.join(crossed)}"
