"""C8: CeleryK8sRunLauncher + celery_k8s_job_executor.

Steps go through the broker: each is picked up by one of the Celery worker pods, and the step pods
running at once never exceed the workers' total concurrency (replicas x each worker's --concurrency,
read from the cluster), measured from the step pods' container start and finish times.

A Celery worker killed while it runs a step: the step's Kubernetes Job outlives it, but the executor
waits for the Celery task's result, which the dead worker never sends. What Dagster promises for a run
that cannot finish is its max runtime (`dagster/max_runtime`, enforced by run monitoring): the run must
end (SUCCESS, FAILURE or CANCELED) within it plus the poll interval and a margin, never hang. The test
reports which end it took and whether the step itself succeeded.
"""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from kubernetes import client

from chaos.faults import apply, celery_worker_fault
from clusters import ClusterInfo
from common.waits import Observation, WaitTimeout, wait_for
from deploy.deployment import Deployment
from deploy.discover import concurrency
from observation.runs import most_at_once
from suites import only
from suites.hold import holding, release
from workloads.locations.conformance.definitions import FAN_OUT_WIDTH

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster, pytest.mark.c8]


def celery_capacity(dagster: Deployment) -> int:
    """Replicas x --concurrency of the Celery worker Deployment, as the cluster has it."""
    name = dagster.settings.names.celery_workers
    assert name, f"no Celery worker Deployment was found in {dagster.namespace}"
    workers = dagster.apps.read_namespaced_deployment(name, dagster.namespace)
    container = workers.spec.template.spec.containers[0]
    per_worker = concurrency(container)
    assert per_worker, f"the Celery workers' command sets no --concurrency: {container.command} {container.args}"
    return (workers.spec.replicas or 0) * per_worker


def running_interval(pod: client.V1Pod) -> tuple[datetime, datetime]:
    state = pod.status.container_statuses[0].state
    assert state.terminated, f"step pod {pod.metadata.name} has not finished: {state}"
    return state.terminated.started_at, state.terminated.finished_at


def test_step_pods_running_at_once_never_exceed_the_celery_workers_concurrency(dagster: Deployment) -> None:
    only(dagster, "celery-k8s")
    capacity = celery_capacity(dagster)

    run_id = dagster.run_to_success("fan_out", timeout=600)
    step_pods = dagster.footprint(run_id).step_pods
    peak = most_at_once([running_interval(pod) for pod in step_pods])
    pickups = [e for e in dagster.webserver.run_events(run_id) if "picked up by Celery" in (e.message or "")]

    assert len(step_pods) == FAN_OUT_WIDTH, f"expected {FAN_OUT_WIDTH} step pods, found {len(step_pods)}"
    assert len(pickups) == FAN_OUT_WIDTH, f"{len(pickups)} of {FAN_OUT_WIDTH} steps were picked up by a Celery worker"
    assert peak <= capacity, (
        f"{peak} step pods ran at once, more than the Celery workers' total concurrency {capacity}")
    print(f"celery capacity {capacity}: at most {peak} of {FAN_OUT_WIDTH} step pods ran at once")


MAX_RUNTIME_SECONDS = 150
END_MARGIN_SECONDS = 60
ENDED = ("SUCCESS", "FAILURE", "CANCELED")


def picked_up_by(dagster: Deployment, run_id: str) -> Observation[str]:
    """The worker pod the run's held step went to, from the executor's "picked up by Celery" event."""
    pickups = [e.metadata.get("Celery worker Kubernetes Pod name") for e in dagster.webserver.run_events(run_id)
               if "picked up by Celery" in (e.message or "")]
    return Observation(bool(pickups and pickups[0]), f"pickups: {pickups}", pickups[0] if pickups else None)


@pytest.mark.ha
@pytest.mark.chaos
def test_a_run_whose_celery_worker_is_killed_mid_step_ends_within_its_max_runtime(
    dagster: Deployment, cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory,
    record_property: pytest.RecordProperty,
) -> None:
    only(dagster, "celery-k8s")
    if not dagster.settings.run_monitoring:  # read from dagster.yaml before the first test; ours monitors
        pytest.skip(f"the instance in {dagster.namespace} turns run monitoring off (run_monitoring.enabled: false): "
                    f"nothing enforces dagster/max_runtime, so a lost Celery task would wait forever")
    with holding(dagster, tags={"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)}) as run_id:
        worker = wait_for(f"a Celery worker to pick up the step of run {run_id}",
                          lambda: picked_up_by(dagster, run_id), 120, 2)
        fault = celery_worker_fault(str(worker), dagster.celery_worker_pods(),
                                    str(dagster.settings.names.celery_workers))
        applied = apply(fault, dagster.core, dagster.namespace,
                        tmp_path_factory.mktemp("chaos") / "celery-worker.json", cluster.kubeconfig, cluster.context,
                        variables=dagster.chaos_variables)
        assert applied.killed == [worker], f"the experiment killed {applied.killed}, not the step's worker {worker}"
        release(dagster, run_id)

        started = dagster.webserver.run(run_id).start_time or time.time()
        bound = MAX_RUNTIME_SECONDS + dagster.settings.run_monitoring_poll_interval_seconds + END_MARGIN_SECONDS
        try:
            ended = wait_for(f"run {run_id} to end", lambda: run_ended(dagster, run_id),
                             max(started + bound - time.time(), 1), 3)
        except WaitTimeout as exc:
            pytest.fail(f"run {run_id} hung past its max runtime of {MAX_RUNTIME_SECONDS}s after its Celery worker "
                        f"{worker} was killed mid-step ({exc.last_seen} {time.time() - started:.0f}s after it started)",
                        pytrace=False)

    step_ends = [e.event_type for e in dagster.webserver.run_events(run_id)
                 if e.step_key == "hold" and e.event_type in ("STEP_SUCCESS", "STEP_FAILURE")]
    record_property("run_outcome", str(ended))
    record_property("step_outcome", ", ".join(step_ends) or "none")
    print(f"C8 worker kill: {worker} killed mid-step (replaced in {applied.recovered_seconds:.1f}s); step "
          f"{step_ends or 'without an end event'}; run {run_id} ended {ended} "
          f"{(dagster.webserver.run(run_id).end_time or time.time()) - started:.0f}s after it started")


def run_ended(dagster: Deployment, run_id: str) -> Observation[str]:
    status = dagster.webserver.run_status(run_id).value
    return Observation(status in ENDED, status, status)
