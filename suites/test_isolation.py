"""C31: the env and the secrets of one code location never reach the pods of another location's runs.

Each sample location sets DKC_LOCATION_ENV to its own name and passes a Secret of its own (DKC_LOCATION_SECRET,
a different value per location). One run of each location is checked in every pod spec (run and step pods: the
values and the Secrets referenced) and inside its processes (the report step's own view, as hashes): the other
location's value or Secret must never be there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client

from deploy.deployment import Deployment
from deploy.settings import LOCATION_ENV, LOCATION_SECRET_ENV, location_secret
from observation.runs import env_of, env_sources
from suites.expected import sha256
from suites.secrets import location_secret_values

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster, pytest.mark.c31]


@dataclass(frozen=True)
class LocationRun:
    """A run of one location: its pods and what its report steps saw."""

    location: str
    run_id: str
    pods: list[client.V1Pod]
    reports: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def runs(dagster: Deployment) -> dict[str, LocationRun]:
    """One run of ``report`` per code location, by location (the env and the secret checks read the same runs)."""
    found = {}
    for location in dagster.settings.code_locations:
        run_id = dagster.run_to_success("report", location=location.name)
        footprint = dagster.footprint(run_id)
        assert footprint.run_pods, f"no run pod of run {run_id}"
        found[location.name] = LocationRun(location.name, run_id, footprint.pods, dagster.step_reports(run_id))
    return found


def secrets_referenced(pod: client.V1Pod) -> set[str]:
    """The Secrets a pod's containers take env from, whole (envFrom) or by key."""
    names = set()
    for container in pod.spec.containers + (pod.spec.init_containers or []):
        names.update(env_sources(container)[1])
        names.update(var.value_from.secret_key_ref.name for var in container.env or []
                     if var.value_from and var.value_from.secret_key_ref)
    return names


def test_one_locations_env_never_reaches_another_locations_pods(
    dagster: Deployment, runs: dict[str, LocationRun], record_property: pytest.RecordProperty,
) -> None:
    without = [location.name for location in dagster.settings.code_locations
               if (LOCATION_ENV, location.name) not in location.env]
    if without:
        pytest.skip(f"code location(s) {', '.join(without)} do not set {LOCATION_ENV} to their name (sample "
                    f"locations installed before C31: add them again with the values `./dkc sample-location` prints)")
    crossed = []
    for own, run in runs.items():
        seen = []
        for pod in run.pods:
            value = env_of(pod.spec.containers[0]).get(LOCATION_ENV)
            if value not in (None, own):
                crossed.append(f"pod {pod.metadata.name} of a {own} run has {LOCATION_ENV}={value} in its spec")
            elif value == own:
                seen.append(f"pod {pod.metadata.name}")
        for step, report in run.reports.items():
            value = report.get(f"env {LOCATION_ENV}")
            crossed += [f"step {step} of a {own} run sees {LOCATION_ENV}={other} in its process"
                        for other in runs if other != own and value == sha256(other)]
            if value == sha256(own):
                seen.append(f"step {step}'s process")
        record_property(f"{own}_own_env_seen_in", "; ".join(seen) or "nowhere")

    assert not crossed, f"one location's env reached another's pods: {'; '.join(crossed)}"


def test_one_locations_secret_never_reaches_another_locations_pods(
    dagster: Deployment, runs: dict[str, LocationRun], record_property: pytest.RecordProperty,
) -> None:
    without = [location.name for location in dagster.settings.code_locations
               if location_secret(location.name) not in location.env_secrets]
    if without:
        pytest.skip(f"code location(s) {', '.join(without)} pass no Secret of their own ({location_secret('<name>')}; "
                    f"sample locations installed before C31: add them again with what `./dkc sample-location` prints)")
    values = location_secret_values(dagster)
    crossed = []
    for own, run in runs.items():
        others = [other for other in runs if other != own]
        seen = []
        for pod in run.pods:
            referenced = secrets_referenced(pod)
            crossed += [f"pod {pod.metadata.name} of a {own} run takes env from Secret {location_secret(other)}"
                        for other in others if location_secret(other) in referenced]
            if location_secret(own) in referenced:
                seen.append(f"pod {pod.metadata.name}")
        for step, report in run.reports.items():
            value = report.get(f"env {LOCATION_SECRET_ENV}")
            crossed += [f"step {step} of a {own} run sees {other}'s {LOCATION_SECRET_ENV} in its process"
                        for other in others if values[other] and value == sha256(values[other])]
            if values[own] and value == sha256(values[own]):
                seen.append(f"step {step}'s process")
        # Named without "secret": the report redacts the value of any property whose name has that word.
        record_property(f"{own}_own_credential_seen_in", "; ".join(seen) or "nowhere")

    assert not crossed, f"one location's Secret reached another's pods: {'; '.join(crossed)}"
    unreadable = [name for name, value in values.items() if value is None]
    if unreadable:
        pytest.skip(f"no location's Secret referenced by another's pods, but the Secret(s) of "
                    f"{', '.join(unreadable)} could not be read (the suite's identity needs get on Secrets in "
                    f"{dagster.namespace}), so the processes' view was not compared")
