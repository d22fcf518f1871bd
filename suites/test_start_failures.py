"""C18: a run that cannot start (its image cannot be pulled; its pod cannot be scheduled) is FAILURE within
start_timeout_seconds + the poll interval, Dagster's event log names why its pod did not start, and its Job and
pod are gone afterwards.

Both runs of a combination are launched at once (one wait for the start timeout, not two): one whose run pod
asks for an image that is in no node and no registry, one whose run pod selects a node label no node has.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass

import pytest

from deploy.deployment import Deployment
from observation.failures import first_error
from suites.known import known_defect

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster, pytest.mark.c18]

MARGIN_SECONDS = 60  # the daemon's loop, the GraphQL read, a loaded node
GRACE_SECONDS = 60  # after FAILURE: a Job deleted by Dagster gets its pods' grace period to go
MISSING_IMAGE = "docker.io/local/dkc-no-such-image:0"
NO_NODE_LABEL = "dkc.dagster.io/no-such-node"


@dataclass(frozen=True)
class StartFailure:
    name: str
    k8s_config: dict  # the run's dagster-k8s/config tag
    reason: str  # what the event log must name: the pod's waiting reason or the scheduler's


CASES = (
    StartFailure("image-cannot-be-pulled", {"container_config": {"image": MISSING_IMAGE}},
                 r"ErrImageNeverPull|ErrImagePull|ImagePullBackOff"),
    StartFailure("pod-cannot-be-scheduled", {"pod_spec_config": {"node_selector": {NO_NODE_LABEL: "true"}}},
                 r"Unschedulable|FailedScheduling|didn't match Pod's node affinity/selector"),
)


@dataclass
class Outcome:
    run_id: str
    status: str
    after: float  # seconds from launch to the end Dagster recorded
    error: str  # why Dagster says the run failed: its RUN_FAILURE message(s), else its first error
    left: list[str]  # what of the run still ran after the grace period


LEFT_BEHIND = known_defect(
    "dagster-io/dagster#16535, #15325, #14833: run monitoring marks a run that timed out starting FAILURE "
    "but never terminates it: its run Job and Pending pod stay in the cluster (and may still start later)")


CELERY_GIVES_NO_REASON = known_defect(
    "Dagster defect, no upstream issue found: CeleryK8sRunLauncher (dagster_celery_k8s/launcher.py) has no "
    "get_run_worker_debug_info, so a run that timed out starting fails with only 'Run timed out due to taking "
    "longer than N seconds to start.' and never says why its pod did not start (K8sRunLauncher appends the "
    "pod's waiting reason and events)")


@pytest.fixture(scope="module")
def start_failures(dagster: Deployment) -> dict[str, Outcome]:
    """Both runs launched at once, each awaited to its end; what they left after the grace period."""
    settings = dagster.settings
    if not settings.run_monitoring:
        pytest.skip(f"the instance in {dagster.namespace} has no run monitoring: nothing fails a run that never "
                    "starts (set run_monitoring.enabled)")
    location = settings.code_locations[0].name
    launched = {}
    for case in CASES:
        tags = {"dagster-k8s/config": json.dumps(case.k8s_config)}
        launched[case.name] = (dagster.webserver.launch_run(dagster.job("ping"), location, tags=tags), time.time())
    bound = settings.run_monitoring_start_timeout_seconds + settings.run_monitoring_poll_interval_seconds
    outcomes = {}
    for name, (run_id, started) in launched.items():
        status = dagster.webserver.wait_for_run_status(run_id, ["FAILURE"], timeout=bound + 2 * MARGIN_SECONDS)
        run = dagster.webserver.run(run_id)
        events = dagster.webserver.run_events(run_id)
        failures = [event.message for event in events if event.event_type == "RUN_FAILURE"]
        error = " | ".join(failures) or first_error(events) or ""
        outcomes[name] = Outcome(run_id, status.value, (run.end_time or time.time()) - started, error, [])
    deadline = time.monotonic() + GRACE_SECONDS  # one grace period for both runs, not one each
    for outcome in outcomes.values():
        outcome.left = dagster.running_after(outcome.run_id, max(5.0, deadline - time.monotonic()))
    return outcomes


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_run_that_cannot_start_fails_within_the_start_timeout_naming_why(
    dagster: Deployment, start_failures: dict[str, Outcome], case: StartFailure, record_property: pytest.RecordProperty,
    request: pytest.FixtureRequest,
) -> None:
    if dagster.settings.uses_celery:
        request.applymarker(CELERY_GIVES_NO_REASON)
    outcome = start_failures[case.name]
    settings = dagster.settings
    bound = settings.run_monitoring_start_timeout_seconds + settings.run_monitoring_poll_interval_seconds
    record_property("launch_to_failure_seconds", f"{outcome.after:.1f}")

    assert outcome.status == "FAILURE"
    assert outcome.after <= bound + MARGIN_SECONDS, (
        f"run {outcome.run_id} FAILURE {outcome.after:.0f}s after launch; promised within start_timeout_seconds "
        f"{settings.run_monitoring_start_timeout_seconds}s + the poll interval + {MARGIN_SECONDS}s")
    assert re.search(case.reason, outcome.error), (
        f"run {outcome.run_id}'s event log does not say why its pod did not start (expected {case.reason}); "
        f"what it says: {' '.join(outcome.error.split())[:600] or 'nothing'}")


@LEFT_BEHIND
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_run_that_cannot_start_leaves_no_job_or_pod_behind(
    start_failures: dict[str, Outcome], case: StartFailure,
) -> None:
    outcome = start_failures[case.name]
    assert not outcome.left, (f"{GRACE_SECONDS}s after run {outcome.run_id} was FAILURE, still in the cluster: "
                              f"{'; '.join(outcome.left)}")
