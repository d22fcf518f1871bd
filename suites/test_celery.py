"""C8: CeleryK8sRunLauncher + celery_k8s_job_executor.

Steps go through the broker: each is picked up by one of the Celery worker pods, and the step pods
running at once never exceed the workers' total concurrency (replicas x each worker's --concurrency,
read from the cluster), measured from the step pods' container start and finish times.

A Celery worker killed while it runs a step: the step's Kubernetes Job outlives it, but the executor
waits for the Celery task's result, which the dead worker never sends. What Dagster promises for a run
that cannot finish is its max runtime (`dagster/max_runtime`, enforced by run monitoring): the run must
end (SUCCESS, FAILURE or CANCELED) within it plus the poll interval and a margin, never hang. The test
reports which end it took and whether the step itself succeeded.

A Celery worker asked to stop (its pod deleted with its grace period, as a rollout, a helm upgrade or a node drain
does) must shut down warm: stop taking tasks at once and exit when its running tasks are done, well before the
grace period ends, not be killed at the end of it while still taking tasks.
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
from observation.kube import wait_pod_removed
from observation.runs import most_at_once
from suites import only
from suites.hold import holding, release
from suites.known import known_defect
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


WORKER_IGNORES_SIGTERM = known_defect(
    "Dagster defect, no upstream issue found: the chart's Celery worker command `dagster-celery worker start` (PID 1, "
    "ours the same) runs celery as a child process and neither handles nor passes on SIGTERM, so a deleted worker "
    "pod keeps taking tasks for its whole grace period and is killed at its end (exit 137, ~30 s); the tasks it "
    "took die with it, leaving their step Jobs running and their steps without an end (seen in C27 while the "
    "suite's own rollout replaced the workers)")


@pytest.mark.ha
@pytest.mark.chaos
@WORKER_IGNORES_SIGTERM
def test_a_celery_worker_asked_to_stop_shuts_down_warm_before_its_grace_period_ends(
    dagster: Deployment, cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory,
    record_property: pytest.RecordProperty,
) -> None:
    only(dagster, "celery-k8s")
    selector = dagster.celery_worker_pods()
    idle = [pod for pod in dagster.core.list_namespaced_pod(dagster.namespace, label_selector=selector).items
            if pod.status.phase == "Running" and not pod.metadata.deletion_timestamp]
    if not idle:
        pytest.fail(f"no running Celery worker pod ({selector}) in {dagster.namespace}", pytrace=False)
    worker = idle[0]
    grace = worker.spec.termination_grace_period_seconds or 30
    fault = celery_worker_fault(worker.metadata.name, selector, str(dagster.settings.names.celery_workers),
                                grace_period=-1)
    applied = apply(fault, dagster.core, dagster.namespace,
                    tmp_path_factory.mktemp("chaos") / "celery-worker-stop.json", cluster.kubeconfig, cluster.context,
                    variables=dagster.chaos_variables)
    if applied.killed != [worker.metadata.name]:  # a fault not applied is never the known defect: pytest.fail
        pytest.fail(f"the experiment deleted {applied.killed}, not the worker {worker.metadata.name}", pytrace=False)
    removal = wait_pod_removed(dagster.core, dagster.namespace, worker, grace + 60)

    asked = removal.deleting
    if not asked or asked.metadata.deletion_grace_period_seconds != grace:
        pytest.fail(f"worker {worker.metadata.name} was not seen deleted with its {grace}s grace period "
                    f"({asked.metadata.deletion_grace_period_seconds if asked else 'no deletion seen'})", pytrace=False)
    # The API sets the deletion timestamp to the moment of the request plus the grace period.
    requested = asked.metadata.deletion_timestamp.timestamp() - grace
    ended = [status.state.terminated for status in removal.last.status.container_statuses or []
             if status.state.terminated]
    if not ended:
        pytest.fail(f"worker {worker.metadata.name} was removed with no final container state", pytrace=False)
    took = ended[0].finished_at.timestamp() - requested
    record_property("worker_stop_seconds", f"{took:.1f}")
    record_property("worker_exit_code", str(ended[0].exit_code))
    assert ended[0].exit_code == 0 and took < grace - 5, (
        f"Celery worker {worker.metadata.name} did not shut down when asked: its container ended {took:.0f}s after "
        f"the deletion (grace period {grace}s) with exit code {ended[0].exit_code} ({ended[0].reason})"
        + ("; 137 is SIGKILL: it was killed at the end of its grace period, taking tasks until then"
           if ended[0].exit_code == 137 else ""))
    print(f"Celery worker {worker.metadata.name} stopped warm {took:.1f}s after it was asked (grace {grace}s)")
