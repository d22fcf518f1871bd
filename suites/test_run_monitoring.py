"""C14: run monitoring notices a run whose run worker was lost.

The run's pod is killed, or its Job deleted, while its op is held. With max_resume_run_attempts = 0 the
run must be marked FAILURE within run monitoring's poll interval plus a stated margin (the Job controller
noticing the lost pod, one daemon loop, the GraphQL read). Who marked it is reported with the result: a
deleted pod gets SIGTERM first, and a run worker that catches it may mark its run failed itself before
the daemon's run monitoring (the backstop for a worker that cannot) notices the lost pod.

With resume attempts > 0 the K8s run launcher resumes the run in a new Job `dagster-run-<id>-1` that
finishes it. The Celery K8s launcher cannot resume runs (Dagster refuses an instance that asks it to),
so its lost runs are marked FAILURE.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext

import pytest

from chaos.run_worker import RUN_POD_KILLED, RUN_WORKER_FAULTS, RunWorkerFault
from clusters import ClusterInfo
from deploy import names
from deploy.bringup import reconfigured
from deploy.deployment import Deployment
from observation.kube import watch_until
from suites.hold import holding, release

pytestmark = [pytest.mark.ha, pytest.mark.chaos, pytest.mark.needs_cluster, pytest.mark.c14]

MARGIN_SECONDS = 60


def who_marked_failed(dagster: Deployment, run_id: str) -> str:
    """Run monitoring, or the run worker itself, going by the message of the run's RUN_FAILURE event."""
    failures = [e.message for e in dagster.webserver.run_events(run_id) if e.event_type == "RUN_FAILURE"]
    if not failures:
        return "nobody (no RUN_FAILURE event)"
    if any("Detected run worker status" in message for message in failures):
        return "run monitoring"
    if any("interrupted" in message for message in failures):
        return "the run worker itself, on its interrupt"
    return f"another path: {failures[-1][:120]}"


@pytest.mark.parametrize("fault", RUN_WORKER_FAULTS, ids=lambda f: f.name)
def test_a_run_whose_run_worker_is_lost_is_marked_failed_within_the_poll_interval(
    dagster: Deployment, cluster: ClusterInfo, held_run: str, fault: RunWorkerFault,
    tmp_path_factory: pytest.TempPathFactory, record_property: pytest.RecordProperty,
) -> None:
    settings = dagster.settings
    if not settings.owned and not (settings.run_monitoring and settings.max_resume_run_attempts == 0):
        pytest.skip(f"the instance in {dagster.namespace} does not monitor runs without resuming them (run monitoring "
                    f"{settings.run_monitoring}, max_resume_run_attempts {settings.max_resume_run_attempts})")
    assert settings.run_monitoring and settings.max_resume_run_attempts == 0, "needs run monitoring without resume"
    before = dagster.footprint(held_run)
    assert len(before.run_pods) == 1 and len(before.run_jobs) == 1, (
        f"expected one run Job and pod for {held_run}: {[p.metadata.name for p in before.run_pods]}")
    pod, job = before.run_pods[0], before.run_jobs[0]

    faulted_at = fault.apply(dagster.core, dagster.batch, pod, job, {**dagster.chaos_variables, "run_id": held_run},
                             tmp_path_factory.mktemp("chaos") / f"{fault.name}.json", cluster.kubeconfig,
                             cluster.context)

    status = dagster.webserver.wait_for_run_status(held_run, ["FAILURE"], timeout=300)
    run = dagster.webserver.run(held_run)
    noticed_after = (run.end_time or time.time()) - faulted_at
    record_property("fault_to_failure_seconds", f"{noticed_after:.1f}")

    marked_by = who_marked_failed(dagster, held_run)
    record_property("marked_failed_by", marked_by)
    bound = settings.run_monitoring_poll_interval_seconds + MARGIN_SECONDS
    assert status.value == "FAILURE"
    assert noticed_after <= bound, (
        f"run monitoring marked run {held_run} FAILURE {noticed_after:.0f}s after its {fault.name}; promised within "
        f"the poll interval {settings.run_monitoring_poll_interval_seconds}s + {MARGIN_SECONDS}s margin")
    print(f"{fault.name}: run {held_run} FAILURE {noticed_after:.1f}s after the fault, marked by {marked_by}")


def resuming(dagster: Deployment) -> AbstractContextManager[Deployment]:
    """The deployment with resume attempts: ours reconfigured for the test, someone else's only if it resumes."""
    if dagster.settings.owned:
        return reconfigured(dagster, max_resume_run_attempts=1)
    if dagster.settings.max_resume_run_attempts < 1 or not dagster.settings.run_monitoring:
        pytest.skip(f"the instance in {dagster.namespace} does not resume runs (max_resume_run_attempts "
                    f"{dagster.settings.max_resume_run_attempts}); the suite never reconfigures a deployment it "
                    f"did not make")
    return nullcontext(dagster)


@pytest.mark.parametrize("fault", [RUN_POD_KILLED], ids=lambda f: f.name)
def test_a_run_whose_run_pod_is_killed_is_resumed_when_resume_attempts_allow_it(
    dagster: Deployment, cluster: ClusterInfo, fault: RunWorkerFault, tmp_path_factory: pytest.TempPathFactory,
    record_property: pytest.RecordProperty,
) -> None:
    if dagster.settings.uses_celery:
        pytest.skip("CeleryK8sRunLauncher cannot resume runs: Dagster refuses to start an instance that sets "
                    "max_resume_run_attempts > 0 with it (its lost runs are marked FAILURE, checked above)")
    with resuming(dagster) as resumable, holding(resumable) as run_id:
        before = resumable.footprint(run_id)
        pod = before.run_pods[0]
        fault.apply(resumable.core, resumable.batch, pod, before.run_jobs[0],
                    {**resumable.chaos_variables, "run_id": run_id},
                    tmp_path_factory.mktemp("chaos") / f"{fault.name}.json", cluster.kubeconfig, cluster.context)

        resumed_job = f"{names.run_job_name(run_id)}-1"
        resumed = watch_until(resumable.batch.list_namespaced_job, f"Job {resumed_job} (the resumed run)",
                              lambda job: job.metadata.name == resumed_job, 300,
                              namespace=resumable.namespace, label_selector=names.run_selector(run_id))
        record_property("resumed_in_job", resumed.metadata.name)
        release(resumable, run_id)
        status = resumable.webserver.wait_for_run_status(run_id, ["SUCCESS"], timeout=300)

    assert status.value == "SUCCESS", f"the resumed run {run_id} ended {status.value}"
    assert resumed.spec.backoff_limit == 0, "the resumed run's Job lets Kubernetes retry it"
    print(f"run {run_id} resumed in Job {resumed.metadata.name} and finished SUCCESS")
