"""Step pods that fail: the step fails within a bound, the run never hangs.

C19 a step pod that cannot start (its image cannot be pulled; its service account does not exist) fails the step
    within a bound, and the run ends.
C21 a step pod killed mid-step: the step fails (or Dagster retries it) within the step health check, never hangs;
    step Jobs have backoffLimit 0, so Kubernetes never starts the step a second time behind Dagster's back.

Only k8s_job_executor and celery_k8s_job_executor run steps in pods of their own. "Hangs" is a verdict reached at a
stated deadline: the run start timeout plus the poll interval and a margin, the bound users already have for a run
pod that cannot start (C18).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from chaos.run_worker import STEP_POD_KILLED
from clusters import ClusterInfo
from common.waits import Observation, WaitTimeout, wait_for
from dagster_api import TERMINAL_RUN_STATUSES, DagsterApiError
from deploy.deployment import Deployment
from observation.failures import kubernetes_cause
from observation.labels import JOB_NAME_LABEL
from suites import only
from suites.hold import holding
from suites.known import known_defect

pytestmark = [pytest.mark.needs_cluster]

MARGIN_SECONDS = 60  # the daemon's loop, the GraphQL read, a loaded node
STEP = "ping"  # the one op of the ping job, whose step pod is made unable to start
HELD_STEP = "hold"
MISSING_IMAGE = "docker.io/local/dkc-no-such-image:0"
MISSING_SERVICE_ACCOUNT = "dkc-no-such-service-account"


@dataclass(frozen=True)
class StepStartFailure:
    name: str
    step_k8s_config: dict  # the step's entry of the executor's per_step_k8s_config


CASES = (
    StepStartFailure("image-cannot-be-pulled", {"container_config": {"image": MISSING_IMAGE}}),
    StepStartFailure("service-account-missing", {"pod_spec_config": {"service_account_name": MISSING_SERVICE_ACCOUNT}}),
)

STEP_HANGS_K8S_JOB = known_defect(
    "dagster-io/dagster#24595: k8s_job_executor's step health check only asks whether the step Job has failed "
    "pods; a Job whose pod never starts (ImagePullBackOff) or is never created (FailedCreate: serviceaccount not "
    "found) never fails, so the step stays in progress and the run STARTED with no end")

STEP_HANGS_CELERY = known_defect(
    "Dagster defect, no upstream issue found (#24595 is k8s_job_executor's): celery_k8s_job_executor's worker "
    "waits for the step Job with wait_for_job_success, which reads only the Job's status until job_wait_timeout "
    "(86400 s by default); a pod that never starts or is never created leaves the run STARTED with no end")


@dataclass
class StepOutcome:
    run_id: str
    ended: str | None  # STEP_FAILURE, or the run's terminal status; None: still going at the deadline
    after: float  # seconds from launch to the end, or to the deadline
    seen: str  # what Dagster and Kubernetes showed at the end or the deadline


def step_bound(dagster: Deployment) -> float:
    settings = dagster.settings
    return (settings.run_monitoring_start_timeout_seconds + settings.run_monitoring_poll_interval_seconds
            + MARGIN_SECONDS)


def _step_ended(dagster: Deployment, run_id: str, step: str) -> Observation[str]:
    events = dagster.webserver.run_events(run_id)
    if any(event.event_type == "STEP_FAILURE" and event.step_key == step for event in events):
        return Observation(True, "STEP_FAILURE", "STEP_FAILURE")
    status = dagster.webserver.run_status(run_id)
    if status in TERMINAL_RUN_STATUSES:
        return Observation(True, status.value, status.value)
    return Observation(False, f"run {status.value}, step {step} not failed")


def await_step_end(dagster: Deployment, run_id: str, step: str, since: float, deadline: float) -> StepOutcome:
    """Until ``step`` failed or the run ended, at most until ``deadline`` (monotonic): a verdict either way."""
    try:
        ended = wait_for(f"step {step} of run {run_id} to fail or the run to end",
                         lambda: _step_ended(dagster, run_id, step), max(1.0, deadline - time.monotonic()), 2.0)
    except WaitTimeout:
        ended = None
    seen = kubernetes_cause(dagster.core, dagster.batch, dagster.namespace, run_id) or "its Jobs and pods look healthy"
    return StepOutcome(run_id, ended, time.monotonic() - since, seen)


def clean_up(dagster: Deployment, run_id: str) -> None:
    """A run left going by a failed promise is terminated, and the step Jobs no one else deletes are removed, so
    the next test finds an idle deployment."""
    if dagster.webserver.run_status(run_id) not in TERMINAL_RUN_STATUSES:
        try:
            dagster.webserver.terminate_run(run_id)
        except DagsterApiError:  # it may have ended between the two calls: only a run still going is an error
            if dagster.webserver.run_status(run_id) not in TERMINAL_RUN_STATUSES:
                raise
    for job in dagster.footprint(run_id).step_jobs:
        dagster.batch.delete_namespaced_job(job.metadata.name, dagster.namespace, propagation_policy="Background")


@pytest.fixture(scope="module")
def step_start_failures(dagster: Deployment) -> dict[str, StepOutcome]:
    """Both runs launched at once (one wait for the bound, not two), each awaited to its end or the bound."""
    only(dagster, "k8s-job", "celery-k8s")
    location = dagster.settings.code_locations[0].name
    launched = {}
    for case in CASES:
        run_config = {"execution": {"config": {"per_step_k8s_config": {STEP: case.step_k8s_config}}}}
        launched[case.name] = (dagster.webserver.launch_run(dagster.job(STEP), location, run_config=run_config),
                               time.monotonic())
    deadline = max(since for _, since in launched.values()) + step_bound(dagster)
    outcomes = {name: await_step_end(dagster, run_id, STEP, since, deadline)
                for name, (run_id, since) in launched.items()}
    for outcome in outcomes.values():
        clean_up(dagster, outcome.run_id)
    return outcomes


@pytest.mark.conformance
@pytest.mark.c19
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_a_step_pod_that_cannot_start_fails_its_step_within_a_bound(
    dagster: Deployment, step_start_failures: dict[str, StepOutcome], case: StepStartFailure,
    record_property: pytest.RecordProperty, request: pytest.FixtureRequest,
) -> None:
    request.applymarker(STEP_HANGS_CELERY if dagster.settings.uses_celery else STEP_HANGS_K8S_JOB)
    outcome = step_start_failures[case.name]
    record_property("launch_to_step_end_seconds", f"{outcome.after:.1f}" if outcome.ended else "none")

    assert outcome.ended, (
        f"run {outcome.run_id} hangs: {outcome.after:.0f}s after launch (the bound: start timeout + poll interval + "
        f"{MARGIN_SECONDS}s) step {STEP} has not failed and the run has not ended; Kubernetes shows {outcome.seen}")
    assert outcome.ended != "SUCCESS", f"run {outcome.run_id} SUCCESS although its step pod could not start"
    print(f"{case.name}: run {outcome.run_id} {outcome.ended} {outcome.after:.1f}s after launch ({outcome.seen})")


@pytest.mark.ha
@pytest.mark.chaos
@pytest.mark.c21
def test_a_step_pod_killed_mid_step_fails_its_step_within_the_health_check(
    dagster: Deployment, cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory,
    record_property: pytest.RecordProperty,
) -> None:
    only(dagster, "k8s-job", "celery-k8s")
    with holding(dagster) as run_id:
        held = dagster.footprint(run_id)
        assert len(held.step_pods) == 1 and len(held.step_jobs) == 1, (
            f"run {run_id} holds in step {HELD_STEP}, but its step Jobs are {[j.metadata.name for j in held.step_jobs]}"
            f" and pods {[p.metadata.name for p in held.step_pods]}")
        step_job, step_pod = held.step_jobs[0], held.step_pods[0]
        assert step_job.spec.backoff_limit == 0, (
            f"step Job {step_job.metadata.name} has backoffLimit {step_job.spec.backoff_limit}: Kubernetes would start "
            "the step again behind Dagster's back (dagster-io/dagster#33755)")

        killed_at = STEP_POD_KILLED.apply(dagster.core, dagster.batch, step_pod, step_job,
                                          {**dagster.chaos_variables, "run_id": run_id},
                                          tmp_path_factory.mktemp("chaos") / "step-pod-killed.json", cluster.kubeconfig,
                                          cluster.context)
        outcome = await_step_end(dagster, run_id, HELD_STEP, time.monotonic(), time.monotonic() + step_bound(dagster))
        after_kill = time.time() - killed_at
        clean_up(dagster, run_id)
    record_property("kill_to_step_end_seconds", f"{after_kill:.1f}" if outcome.ended else "none")

    assert outcome.ended, (
        f"run {run_id} hangs: {outcome.after:.0f}s after its step pod {step_pod.metadata.name} was killed, step "
        f"{HELD_STEP} has not failed and the run has not ended; Kubernetes shows {outcome.seen}")
    assert outcome.ended != "SUCCESS", f"run {run_id} SUCCESS although its held step's pod was killed"
    remade = [pod.metadata.name for pod in dagster.footprint(run_id).step_pods
              if pod.metadata.labels.get(JOB_NAME_LABEL) == step_job.metadata.name
              and pod.metadata.uid != step_pod.metadata.uid]
    assert not remade, f"Kubernetes made new pods for the killed step's Job: {remade}"
    print(f"run {run_id}: step {HELD_STEP} {outcome.ended} {after_kill:.1f}s after its pod was killed")
