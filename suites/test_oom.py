"""C20: an OOMKilled run worker: its run is FAILURE within the poll interval and the failure names OOMKilled.

The run's op takes memory in the run worker's own process (in_process executor) while its pod has a small
memory limit, so the kernel kills the run worker itself, not a step process. The test first proves the kill
(the run pod's container terminated OOMKilled), then times Dagster from the kill to FAILURE.
"""

from __future__ import annotations

import json
import time

import pytest
from kubernetes import client

from deploy.deployment import Deployment
from images.dagster import validate_dagster_version
from suites.known import known_defect
from workloads.locations.conformance.definitions import HOG_JOB

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster, pytest.mark.c20]

MEMORY_LIMIT = "384Mi"  # above what the run worker needs to start (about 200 MiB), far below what the op takes
MARGIN_SECONDS = 60  # the Job controller noticing the pod, one daemon loop, the GraphQL read
TAGS = {"dagster-k8s/config": json.dumps({"container_config": {"resources": {
    "requests": {"memory": "64Mi"}, "limits": {"memory": MEMORY_LIMIT}}}})}
# Per Dagster line: 1.13.27 names OOMKilled in the RUN_FAILURE; 1.12.22 does not (the change was not looked up).
NAMES_NO_REASON_BEFORE_1_13 = known_defect(
    "Dagster before 1.13 (seen on 1.12.22 and 1.11.16): the OOMKilled run worker's run is FAILURE "
    "in time, but the failure says only \"Run has not completed but K8s job has no active pods\", not OOMKilled; "
    "1.13.27 names it")


def oom_killed_at(pods: list[client.V1Pod]) -> float | None:
    """When a container of these pods was OOMKilled (epoch seconds), or None."""
    for pod in pods:
        for status in (pod.status.container_statuses or []) if pod.status else []:
            terminated = status.state.terminated if status.state else None
            if terminated and terminated.reason == "OOMKilled":
                return terminated.finished_at.timestamp() if terminated.finished_at else time.time()
    return None


def test_an_oomkilled_run_worker_fails_its_run_within_the_poll_interval_naming_oomkilled(
    dagster: Deployment, record_property: pytest.RecordProperty, request: pytest.FixtureRequest,
) -> None:
    settings = dagster.settings
    if settings.uses_celery:
        pytest.skip("CeleryK8sRunLauncher runs only celery_k8s_job_executor jobs: its run worker hands every op to "
                    "a step pod, so no op can take memory in the run worker itself")
    if not settings.run_monitoring:
        pytest.skip(f"the instance in {dagster.namespace} has no run monitoring, which notices a lost run worker")
    if validate_dagster_version(dagster.webserver.version())[0] < 13:  # (minor, patch) of 1.X.Y
        request.applymarker(NAMES_NO_REASON_BEFORE_1_13)
    run_id = dagster.webserver.launch_run(HOG_JOB, settings.code_locations[0].name, tags=TAGS)

    status = dagster.webserver.wait_for_run_status(run_id, ["FAILURE"], timeout=300)
    killed_at = oom_killed_at(dagster.footprint(run_id).run_pods)
    assert killed_at is not None, (f"run {run_id} ended {status.value}, but no run pod of it was OOMKilled (memory "
                                   f"limit {MEMORY_LIMIT}): the fault did not happen")
    run = dagster.webserver.run(run_id)
    noticed_after = (run.end_time or time.time()) - killed_at
    record_property("oomkill_to_failure_seconds", f"{noticed_after:.1f}")
    failures = " | ".join(e.message for e in dagster.webserver.run_events(run_id) if e.event_type == "RUN_FAILURE")
    bound = settings.run_monitoring_poll_interval_seconds + MARGIN_SECONDS

    assert noticed_after <= bound, (
        f"run {run_id} FAILURE {noticed_after:.0f}s after its run worker was OOMKilled; promised within the poll "
        f"interval {settings.run_monitoring_poll_interval_seconds}s + {MARGIN_SECONDS}s")
    assert "OOMKilled" in failures, (f"run {run_id}'s failure does not name OOMKilled: "
                                     f"{' '.join(failures.split())[:600] or 'no RUN_FAILURE event'}")
    print(f"run {run_id} FAILURE {noticed_after:.1f}s after its run worker was OOMKilled")
