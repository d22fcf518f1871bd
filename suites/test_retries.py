"""Retries come from Dagster, never from Kubernetes.

C12 a failed run is retried by the daemon (run_retries, `dagster/max_retries` = N) as exactly N new runs,
    each naming its parent and root run and carrying `dagster/retry_number`; every run Job has
    backoffLimit 0 and no pod was restarted or re-created by Kubernetes.
C13 an op RetryPolicy retries a failed step (STEP_UP_FOR_RETRY, STEP_RESTARTED, then STEP_SUCCESS), also
    when the step runs in its own Job: the retry gets a new step Job.
"""

from __future__ import annotations

import pytest
from kubernetes import client

from common.waits import Observation, holds_for, wait_for
from dagster_api import RunInfo
from deploy import names
from deploy.deployment import Deployment
from suites import only

pytestmark = [pytest.mark.needs_cluster]

MAX_RETRIES = 2
# After the last retry failed, watch this long for a retry too many (several daemon loops).
EXTRA_RETRY_WINDOW = 45


def retries_of(dagster: Deployment, root_run_id: str) -> list[RunInfo]:
    return sorted(dagster.webserver.runs(tags={"dagster/root_run_id": root_run_id}),
                  key=lambda run: int(run.tags.get("dagster/retry_number", "0")))


def restarts(pod: client.V1Pod) -> int:
    return sum(status.restart_count for status in pod.status.container_statuses or [])


@pytest.mark.ha
@pytest.mark.c12
def test_a_failed_run_is_retried_by_dagster_exactly_n_times(dagster: Deployment) -> None:
    if not dagster.settings.run_retries:  # read from dagster.yaml before the first test; ours always retries
        pytest.skip(f"the instance in {dagster.namespace} turns run retries off (run_retries.enabled: false in "
                    f"dagster.yaml): nothing would retry the failed run")
    location = dagster.settings.code_locations[0].name
    root = dagster.webserver.launch_run(dagster.job("broken"), location,
                                        tags={"dagster/max_retries": str(MAX_RETRIES)})
    dagster.webserver.wait_for_run_status(root, ["FAILURE"], timeout=300)

    def n_retries_failed() -> Observation[list[RunInfo]]:
        retries = retries_of(dagster, root)
        done = len(retries) >= MAX_RETRIES and all(run.finished for run in retries)
        return Observation(done, ", ".join(f"{r.run_id} {r.status.value}" for r in retries) or "no retry yet", retries)

    retries = wait_for(f"{MAX_RETRIES} retries of run {root} to finish", n_retries_failed, 600, 3) or []

    def still_n_retries() -> Observation[None]:
        count = len(retries_of(dagster, root))
        return Observation(count == MAX_RETRIES, f"{count} retries")

    holds_for(f"exactly {MAX_RETRIES} retries of run {root}", still_n_retries, EXTRA_RETRY_WINDOW, 5)

    assert [r.tags.get("dagster/retry_number") for r in retries] == [str(n) for n in range(1, MAX_RETRIES + 1)]
    parents = [root] + [r.run_id for r in retries[:-1]]
    for retry, parent in zip(retries, parents, strict=True):
        assert retry.parent_run_id == parent, f"retry {retry.run_id} names parent {retry.parent_run_id}, not {parent}"
        assert retry.root_run_id == root, f"retry {retry.run_id} names root {retry.root_run_id}, not {root}"
        assert retry.status.value == "FAILURE", f"retry {retry.run_id} ended {retry.status.value}"
    for run_id in [root, *(r.run_id for r in retries)]:
        found = dagster.footprint(run_id)
        assert [j.metadata.name for j in found.run_jobs] == [names.run_job_name(run_id)], (
            f"run {run_id} has run Jobs {[j.metadata.name for j in found.run_jobs]}, expected exactly one")
        assert found.run_jobs[0].spec.backoff_limit == 0, f"run Job of {run_id} lets Kubernetes retry it"
        assert len(found.run_pods) == 1, (
            f"Kubernetes made {len(found.run_pods)} pods for the run Job of {run_id}: "
            f"{[p.metadata.name for p in found.run_pods]}")
        restarted = {p.metadata.name: restarts(p) for p in found.pods if restarts(p)}
        assert not restarted, f"Kubernetes restarted containers of run {run_id}: {restarted}"


@pytest.mark.conformance
@pytest.mark.c13
def test_a_step_with_a_retry_policy_is_retried_after_its_first_attempt_fails(dagster: Deployment) -> None:
    run_id = dagster.run_to_success("flaky")

    # The step's own events (executors add ENGINE_EVENTs around them, e.g. Celery after the step succeeded).
    kinds = [e.event_type for e in dagster.webserver.run_events(run_id)
             if e.step_key == "flaky" and (e.event_type or "").startswith("STEP_")]

    assert "STEP_UP_FOR_RETRY" in kinds, f"the failed first attempt was not put up for retry: {kinds}"
    after_retry = kinds[kinds.index("STEP_UP_FOR_RETRY"):]
    assert "STEP_RESTARTED" in after_retry, f"the step was not restarted after STEP_UP_FOR_RETRY: {kinds}"
    assert after_retry[-1] == "STEP_SUCCESS", f"the retried step did not end in STEP_SUCCESS: {kinds}"
    assert "STEP_FAILURE" not in kinds, f"the step failed for good although a retry succeeded: {kinds}"


@pytest.mark.conformance
@pytest.mark.c13
def test_a_retried_step_runs_in_a_new_step_job(dagster: Deployment) -> None:
    only(dagster, "k8s-job", "celery-k8s")
    run_id = dagster.run_to_success("flaky")

    step_jobs = sorted(j.metadata.name for j in dagster.footprint(run_id).step_jobs)

    assert len(step_jobs) == 2, f"expected a step Job for the attempt and one for the retry, found {step_jobs}"
    first, retry = step_jobs
    assert retry == f"{first}-1", f"the retry's Job {retry} is not the first attempt's {first} with suffix -1"
