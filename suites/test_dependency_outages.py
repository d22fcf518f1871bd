"""Dagster's dependencies go away mid-run and come back.

C26 PostgreSQL restarted (its data on a volume): a short outage (its pod killed, a new one Ready within seconds)
    fails no run in flight; a long one (stopped for longer than dagster-postgres's ~11 s of connection retries) ends
    the run within its max runtime, never a hang; the webserver and the daemon recover without restarts.
C28 the Celery broker (Redis) restarted or stopped mid-run: the run ends within its max runtime, never hangs.
Both: once the dependency is back, a new run succeeds (the deployment works again without a hand's help).

The run holds in its op (carrying a dagster/max_runtime tag) while the dependency is away, and is released once the
outage is proven over (old pod gone, a new one made after the dependency was given back, Ready), so a run that
survived can finish. Each part of the control plane must still be the same pod, never restarted. Then a new run
is launched; a deployment that cannot run it is put right afterwards (the Celery workers restarted, what users do
by hand), so the tests after this one find it working.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
from kubernetes import client

from chaos.faults import ControlPlane
from chaos.outages import Outage, apply_outage
from clusters import ClusterInfo
from common.waits import WaitTimeout, wait_for
from dagster_api import TERMINAL_RUN_STATUSES
from deploy import names
from deploy.deployment import Deployment
from observation.health import daemons_fresh_since, storage_answers
from observation.kube import rollout_complete
from suites import only
from suites.hold import holding, release

pytestmark = [pytest.mark.ha, pytest.mark.chaos, pytest.mark.outage, pytest.mark.needs_cluster]

MAX_RUNTIME_SECONDS = 150  # the held run's dagster/max_runtime: the bound of "never hangs"
MARGIN_SECONDS = 60  # the daemon's loop, the GraphQL read, a loaded node
LONG_OUTAGE_SECONDS = 45  # well past dagster-postgres's retries (5 attempts, about 11 s in all)
RECOVERY_SECONDS = 180  # for the control plane to answer and heartbeat again once the dependency is back
NEW_RUN_SECONDS = 180  # a one-op run after the outage: it takes seconds on a working deployment

# Intermittent here (seen in 1 of 2 runs), so neither a strict xfail (red whenever Celery copes) nor a non-strict one
# (a fix would go unnoticed): the check stays plain, and a failure names the known Celery defect.
WORKERS_STOP_CONSUMING = (
    "; known Celery defect, intermittent here (celery/celery#8030, #8091, #10205): after the broker was restarted "
    "the workers log 'Connected to redis' and 'mingle: all alone' but consume nothing, so the new run's step task "
    "stays in the broker's queue until the workers are restarted")


@dataclass(frozen=True)
class Case:
    dependency: str
    deployment: str
    component: str
    stopped_seconds: int
    survives: bool  # the promise: the run ends SUCCESS (short outage), else it ends at all within its max runtime

    def outage(self) -> Outage:
        return Outage(self.dependency, self.deployment, names.selector(self.component), self.stopped_seconds)

    @property
    def id(self) -> str:
        return self.outage().name


CASES = [
    pytest.param(Case("postgresql", names.POSTGRES, names.POSTGRESQL_COMPONENT, 0, True), marks=pytest.mark.c26,
                 id="postgresql-restarted"),
    pytest.param(Case("postgresql", names.POSTGRES, names.POSTGRESQL_COMPONENT, LONG_OUTAGE_SECONDS, False),
                 marks=pytest.mark.c26, id="postgresql-stopped"),
    pytest.param(Case("redis", names.BROKER, names.REDIS_COMPONENT, 0, False), marks=pytest.mark.c28,
                 id="redis-restarted"),
    pytest.param(Case("redis", names.BROKER, names.REDIS_COMPONENT, LONG_OUTAGE_SECONDS, False),
                 marks=pytest.mark.c28, id="redis-stopped"),
]


def restarts_of(core: client.CoreV1Api, namespace: str, selector: str) -> dict[str, int]:
    """Each pod of ``selector`` (by uid) with its containers' restart count."""
    return {pod.metadata.uid: sum(s.restart_count for s in pod.status.container_statuses or [])
            for pod in core.list_namespaced_pod(namespace, label_selector=selector).items}


def end_of(dagster: Deployment, run_id: str, deadline: float) -> str | None:
    """The run's terminal status, or None if it has none at ``deadline`` (monotonic): a verdict either way."""
    try:
        status = dagster.webserver.wait_for_run_status(run_id, [s.value for s in TERMINAL_RUN_STATUSES],
                                                       timeout=max(1.0, deadline - time.monotonic()))
    except WaitTimeout:
        return None
    return status.value



@dataclass
class Outcome:
    run_id: str
    ended: str | None  # the held run's terminal status, None if it had none at its max runtime's bound
    cause: str  # why it did not succeed, when it did not
    down_seconds: float
    restarted: dict[str, str]  # control-plane part -> how it did not recover by itself
    heartbeats: str
    storage_errors: list[str]
    new_run: str
    new_run_ended: str | None  # within NEW_RUN_SECONDS of its launch
    put_right: str  # what was done afterwards so the next tests find a working deployment


def _put_right(dagster: Deployment, run_id: str) -> str:
    """A run that could not finish after the outage: restart the Celery workers (the known remedy), then its end."""
    if not dagster.settings.uses_celery:
        return "nothing (not Celery)"
    workers = dagster.settings.names.celery_workers
    dagster.apps.patch_namespaced_deployment(workers, dagster.namespace, {"spec": {"template": {"metadata": {
        "annotations": {"dkc.dagster.io/restarted-at": str(time.time())}}}}})
    wait_for(f"Deployment {workers} to roll out", lambda: rollout_complete(dagster.apps, dagster.namespace, workers),
             RECOVERY_SECONDS, 2)
    status = end_of(dagster, run_id, time.monotonic() + NEW_RUN_SECONDS)
    return f"restarted the Celery workers: run {run_id} then {status or 'still not ended'}"


@pytest.fixture(scope="module", params=CASES)
def outcome(request: pytest.FixtureRequest, dagster: Deployment, cluster: ClusterInfo,
            tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    case: Case = request.param
    if case.dependency == "redis":
        only(dagster, "celery-k8s")
    if not dagster.settings.owned:
        pytest.skip(f"the {case.dependency} of the Dagster in {dagster.namespace} is not the suite's: never stopped")
    names_ = dagster.settings.names
    plane = ControlPlane.of(dagster.apps, dagster.namespace, names_.webserver, names_.daemon, {})
    parts = {"webserver": plane.webserver, "daemon": plane.daemon}
    before = {part: restarts_of(dagster.core, dagster.namespace, selector) for part, selector in parts.items()}
    earlier: list[str] = []  # a stale pooled connection left by an earlier outage fails once here, not the launch
    wait_for("the webserver to answer from its storages before the fault",
             lambda: storage_answers(dagster.webserver, None, earlier), RECOVERY_SECONDS, 1)
    with holding(dagster, tags={"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)}) as run_id:
        deadline = time.monotonic() + MAX_RUNTIME_SECONDS + dagster.settings.run_monitoring_poll_interval_seconds \
            + MARGIN_SECONDS
        storage_errors: list[str] = []
        try:
            applied = apply_outage(case.outage(), dagster.core, dagster.namespace,
                                   tmp_path_factory.mktemp("chaos") / f"{case.id}.json", cluster.kubeconfig,
                                   cluster.context, dagster.chaos_variables, RECOVERY_SECONDS)
        finally:
            # The webserver keeps one pooled connection per storage: after PostgreSQL restarted each fails once. What
            # fails is recorded (a user sees it); the next test finds a webserver that answers, whatever happened.
            wait_for("the webserver to answer from its storages again",
                     lambda: storage_answers(dagster.webserver, run_id, storage_errors), RECOVERY_SECONDS, 1)
        back_at = time.time()
        release(dagster, run_id)
        ended = end_of(dagster, run_id, deadline)
        heartbeats = wait_for("every required daemon to heartbeat again",
                              lambda: daemons_fresh_since(dagster.webserver, back_at), RECOVERY_SECONDS, 2) or ""
    after = {part: restarts_of(dagster.core, dagster.namespace, selector) for part, selector in parts.items()}
    restarted = {}
    for part in parts:
        grew = {uid: count for uid, count in after[part].items() if count > before[part].get(uid, 0)}
        if set(before[part]) != set(after[part]):
            restarted[part] = "its pod was replaced"
        elif grew:
            restarted[part] = f"its containers restarted {grew}"
    new_run = dagster.webserver.launch_run(dagster.job("ping"), dagster.settings.code_locations[0].name)
    new_run_ended = end_of(dagster, new_run, time.monotonic() + NEW_RUN_SECONDS)
    put_right = "nothing needed" if new_run_ended else _put_right(dagster, new_run)
    cause = dagster.webserver.cause_of(run_id) if ended != "SUCCESS" else ""
    print(f"{case.id}: {case.dependency} had no Ready pod for {applied.down_seconds:.1f}s; held run {run_id} "
          f"{ended or 'no end'}{cause}; daemons {heartbeats} again; webserver errors after the outage: "
          f"{storage_errors or 'none'}; new run {new_run} {new_run_ended or 'no end'}; put right: {put_right}")
    return Outcome(run_id, ended, cause, applied.down_seconds, restarted, heartbeats, storage_errors, new_run,
                   new_run_ended, put_right)


def test_a_run_in_flight_ends_when_a_dependency_of_dagster_goes_away(
    outcome: Outcome, request: pytest.FixtureRequest, record_property: pytest.RecordProperty,
) -> None:
    case: Case = request.node.callspec.params["outcome"]
    record_property("dependency_down_seconds", f"{outcome.down_seconds:.1f}")
    record_property("run_ended", outcome.ended or "no end")
    record_property("webserver_errors_after_the_outage", str(len(outcome.storage_errors)))

    assert outcome.ended, (f"run {outcome.run_id} hangs: no end {MAX_RUNTIME_SECONDS}s (its max runtime) + the poll "
                           f"interval + {MARGIN_SECONDS}s after launch, {case.dependency} down "
                           f"{outcome.down_seconds:.0f}s{outcome.cause}")
    if case.survives:
        assert outcome.ended == "SUCCESS", (
            f"run {outcome.run_id} ended {outcome.ended} after a {outcome.down_seconds:.0f}s {case.dependency} outage, "
            f"which must fail no run in flight{outcome.cause}")
    assert not outcome.restarted, f"did not recover by itself from the {case.dependency} outage: {outcome.restarted}"


def test_a_new_run_succeeds_once_the_dependency_is_back(
    outcome: Outcome, dagster: Deployment, request: pytest.FixtureRequest, record_property: pytest.RecordProperty,
) -> None:
    case: Case = request.node.callspec.params["outcome"]
    known = WORKERS_STOP_CONSUMING if case.dependency == "redis" and not case.stopped_seconds else ""
    record_property("new_run_ended", outcome.new_run_ended or "no end")

    assert outcome.new_run_ended == "SUCCESS", (
        f"run {outcome.new_run}, launched once {case.dependency} was back, "
        f"{outcome.new_run_ended or f'had not ended {NEW_RUN_SECONDS}s later'}"
        f"{dagster.webserver.cause_of(outcome.new_run)}; afterwards: {outcome.put_right}{known}")
