"""C17: terminating a run (GraphQL terminateRun) ends it CANCELED within cancel_timeout_seconds and leaves no
run, step or external Job or pod of it running.

The run holds in its op (in the run pod for multiprocess, in a step pod for k8s_job_executor and Celery) when
it is terminated. K8sRunLauncher.terminate deletes the run Job; step Jobs are reached only through the run
worker's SIGTERM handling, which Dagster skips while the run could still be resumed, or through owner
references (k8s_job_executor's enable_owner_references), which let Kubernetes collect them with the run pod.
"""

from __future__ import annotations

import time

import pytest

from deploy.deployment import Deployment
from suites.hold import holding
from suites.instance import instance_with
from suites.known import known_defect

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster, pytest.mark.c17]

MARGIN_SECONDS = 60  # the daemon's loop, the GraphQL read, a loaded node
# After CANCELED: a deleted Job's pods get their termination grace period (30 s by default) before they are gone.
GRACE_SECONDS = 60

STEP_JOBS_LEFT_WHEN_RESUMABLE = known_defect(
    "dagster-io/dagster#21476: with max_resume_run_attempts > 0 the run worker skips terminating its step "
    "Jobs on SIGTERM (run_will_resume), and K8sRunLauncher.terminate deletes only the run Job: the held "
    "step's Job and pod keep running after the run is CANCELED")


@pytest.mark.parametrize(("resume_attempts", "owner_references"), [(0, False), (0, True), (1, False), (1, True)],
                         ids=["resume-0", "resume-0-owner-references", "resume-1", "resume-1-owner-references"])
def test_a_terminated_run_ends_canceled_and_leaves_nothing_of_it_running(
    dagster: Deployment, resume_attempts: int, owner_references: bool, record_property: pytest.RecordProperty,
    request: pytest.FixtureRequest,
) -> None:
    combination = dagster.settings.combination
    if owner_references and combination != "k8s-job":
        pytest.skip("enable_owner_references is a setting of k8s_job_executor (the k8s-job combination)")
    if resume_attempts and dagster.settings.uses_celery:
        pytest.skip("CeleryK8sRunLauncher cannot resume runs: Dagster refuses max_resume_run_attempts > 0 with it")
    if not dagster.settings.run_monitoring:
        pytest.skip(f"the instance in {dagster.namespace} has no run monitoring, which ends a CANCELING run "
                    "at cancel_timeout_seconds")
    if resume_attempts and combination == "k8s-job" and not owner_references:
        request.applymarker(STEP_JOBS_LEFT_WHEN_RESUMABLE)  # step Jobs only exist with k8s_job_executor
    run_config = {"execution": {"config": {"enable_owner_references": True}}} if owner_references else None

    with (instance_with(dagster, max_resume_run_attempts=resume_attempts) as deployment,
          holding(deployment, run_config=run_config) as run_id):
        held = deployment.footprint(run_id)
        assert held.run_pods, f"run {run_id} holds, but no run pod of it was found"
        asked = time.time()
        deployment.webserver.terminate_run(run_id)
        settings = deployment.settings
        bound = settings.run_monitoring_cancel_timeout_seconds + settings.run_monitoring_poll_interval_seconds
        status = deployment.webserver.wait_for_run_status(run_id, ["CANCELED"], timeout=bound + MARGIN_SECONDS)
        ended = deployment.webserver.run(run_id).end_time or time.time()
        record_property("terminate_to_canceled_seconds", f"{ended - asked:.1f}")
        left = deployment.running_after(run_id, GRACE_SECONDS)

    assert status.value == "CANCELED"
    assert ended - asked <= bound + MARGIN_SECONDS, (
        f"run {run_id} CANCELED {ended - asked:.0f}s after terminateRun; promised within cancel_timeout_seconds "
        f"{settings.run_monitoring_cancel_timeout_seconds}s + the poll interval + {MARGIN_SECONDS}s")
    assert not left, (f"{GRACE_SECONDS}s after run {run_id} was CANCELED, still running: {'; '.join(left)} "
                      f"(held before terminating: {len(held.jobs)} Job(s), {len(held.pods)} pod(s))")
    print(f"run {run_id} CANCELED {ended - asked:.1f}s after terminateRun; nothing of it left running")

