"""Self-tests of the proof of a fault: chaos.faults.apply (the pods it targets were killed and replaced by new
Ready pods, told apart by their UIDs) and chaos.run_worker.RunWorkerFault.apply (exactly the run's pod, or its
Job, was removed, and is gone).

No chaostoolkit process runs: chaos.run.run is replaced by a fake that changes a fake cluster the way the
experiment would (or would not) and returns a journal shaped like chaostoolkit's; the pods are listed by a fake
CoreV1Api and watched by a fake watch stream; the waits' clock is a fake one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos import faults
from chaos import run as chaos_run
from chaos.run_worker import RUN_JOB_DELETED, RUN_POD_KILLED
from common import waits
from common.waits import WaitTimeout
from observation import kube
from tests.fakes import FakeClock

NS = "dkc-chaos"
WEB, DAEMON, CODE = "app=web", "app=daemon", "app=code"
ENDED = "2025-01-02T03:04:05.500000+00:00"


def pod(name: str, uid: str, ready: bool = True, deleting: bool = False) -> client.V1Pod:
    deleted_at = datetime(2025, 1, 2, tzinfo=timezone.utc) if deleting else None
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, uid=uid, namespace=NS, resource_version="1",
                                     deletion_timestamp=deleted_at),
        status=client.V1PodStatus(phase="Running", conditions=[
            client.V1PodCondition(type="Ready", status="True" if ready else "False")]))


def journal(outputs: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    return {"status": status, "run": [{"activity": {"name": name}, "status": "succeeded", "output": output,
                                       "start": ENDED, "end": ENDED} for name, output in outputs.items()]}


class FakeCore:
    """Pods by label selector, as list_namespaced_pod answers; read_namespaced_pod answers from a script."""

    def __init__(self, pods: dict[str, list[client.V1Pod]]) -> None:
        self.pods = pods
        self.reads: list[Any] = []  # what read_namespaced_pod answers, one per call (then 404)
        self.read_calls: list[str] = []

    def list_namespaced_pod(self, namespace: str, label_selector: str | None = None, **_: Any) -> client.V1PodList:
        return client.V1PodList(items=list(self.pods.get(label_selector or "", [])),
                                metadata=client.V1ListMeta(resource_version="1"))

    def read_namespaced_pod(self, name: str, namespace: str, **_: Any) -> client.V1Pod:
        self.read_calls.append(f"pod {name}")
        if not self.reads:
            raise client.ApiException(status=404, reason="Not Found")
        return self.reads.pop(0)


class FakeBatch:
    def __init__(self) -> None:
        self.read_calls: list[str] = []

    def read_namespaced_job(self, name: str, namespace: str, **_: Any) -> client.V1Job:
        self.read_calls.append(f"job {name}")
        raise client.ApiException(status=404, reason="Not Found")


class Experiment:
    """chaos.run.run as a fake: records how it was called, does ``effect`` to the cluster, returns ``outcome``."""

    def __init__(self, outcome: dict[str, Any], effect: Callable[[], None] = lambda: None) -> None:
        self.outcome, self.effect, self.calls = outcome, effect, []

    def __call__(self, experiment: Path, variables: dict[str, Any], journal_path: Path, kubeconfig: Path,
                 context: str | None = None) -> dict[str, Any]:
        self.calls.append({"experiment": experiment.name, "variables": variables})
        self.effect()
        return self.outcome


class QuietWatch:
    """A watch stream: ``events`` once (then the server closes each watch at once)."""

    events: list[dict[str, Any]] = []  # noqa: RUF012 (reset by the fixture)

    def stream(self, func: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        events, QuietWatch.events = QuietWatch.events, []
        yield from events

    def stop(self) -> None:
        pass



@pytest.fixture(autouse=True)
def no_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    QuietWatch.events = []
    monkeypatch.setattr(kube.watch, "Watch", QuietWatch)
    clock = FakeClock()
    monkeypatch.setattr(kube, "wait_for", lambda description, look, timeout, interval=1.0: waits.wait_for(
        description, look, timeout, interval, clock=clock, sleep=clock.sleep))


def run_fault(monkeypatch: pytest.MonkeyPatch, fault: faults.Fault, core: FakeCore, experiment: Experiment,
              tmp_path: Path, **kwargs: Any) -> faults.AppliedFault:
    monkeypatch.setattr(chaos_run, "run", experiment)
    return faults.apply(fault, core, NS, tmp_path / "journal.json", tmp_path / "kubeconfig",  # type: ignore[arg-type]
                        None, **{"recovery_timeout": 0.2, **kwargs})


WEBSERVER_FAULT = faults.Fault(name="webserver", experiment="kill-webserver.yaml",
                               actions=("terminate-a-webserver-pod",), selectors=(WEB,),
                               variables={"webserver_selector": WEB})


# --- chaos.faults: killed and replaced ------------------------------------------------------------------------

def test_the_proof_passes_when_the_killed_pod_has_a_ready_replacement_with_a_new_uid(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    core = FakeCore({WEB: [pod("web-a", "uid-a"), pod("web-b", "uid-b")]})

    def kill_web_a() -> None:
        core.pods[WEB] = [pod("web-b", "uid-b"), pod("web-c", "uid-c")]

    applied = run_fault(monkeypatch, WEBSERVER_FAULT, core,
                        Experiment(journal({"terminate-a-webserver-pod": ["web-a"]}), kill_web_a), tmp_path)

    assert applied.killed == ["web-a"]
    assert applied.replacements == {WEB: "web-c"}  # web-b was there before: it replaces nothing
    assert applied.experiment_status == "completed"
    assert applied.journal == tmp_path / "journal.json"


def test_a_fault_whose_pods_kept_their_uids_is_never_proven(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The experiment says it terminated web-a, but web-a is still the same pod: no replacement, no pass."""
    core = FakeCore({WEB: [pod("web-a", "uid-a")]})

    with pytest.raises((faults.FaultNotApplied, WaitTimeout)) as failure:
        run_fault(monkeypatch, WEBSERVER_FAULT, core, Experiment(journal({"terminate-a-webserver-pod": ["web-a"]})),
                  tmp_path)

    message = str(failure.value)
    assert f"a new Ready pod for {WEB} in {NS}" in message
    assert "last seen: web-a Running" in message  # the old pod, still there


def test_a_replacement_is_waited_for_until_it_is_ready(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    core = FakeCore({WEB: [pod("web-a", "uid-a")]})

    def replace_with_unready_pod() -> None:
        core.pods[WEB] = [pod("web-a", "uid-a", deleting=True), pod("web-c", "uid-c", ready=False)]
        QuietWatch.events = [{"type": "MODIFIED", "object": pod("web-a", "uid-a", deleting=True)},
                             {"type": "MODIFIED", "object": pod("web-c", "uid-c", ready=True)}]

    applied = run_fault(monkeypatch, WEBSERVER_FAULT, core,
                        Experiment(journal({"terminate-a-webserver-pod": ["web-a"]}), replace_with_unready_pod),
                        tmp_path)

    assert applied.replacements == {WEB: "web-c"}


def test_a_replacement_that_never_becomes_ready_fails_the_proof(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    core = FakeCore({WEB: [pod("web-a", "uid-a")]})

    def replace_with_unready_pod() -> None:
        core.pods[WEB] = [pod("web-c", "uid-c", ready=False)]

    with pytest.raises(WaitTimeout, match=f"a new Ready pod for {WEB} in {NS}; last seen: web-c Running$"):
        run_fault(monkeypatch, WEBSERVER_FAULT, core,
                  Experiment(journal({"terminate-a-webserver-pod": ["web-a"]}), replace_with_unready_pod), tmp_path)


def test_an_experiment_that_killed_someone_elses_pod_is_not_our_fault(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    core = FakeCore({WEB: [pod("web-a", "uid-a")]})

    with pytest.raises(faults.FaultNotApplied) as failure:
        run_fault(monkeypatch, WEBSERVER_FAULT, core,
                  Experiment(journal({"terminate-a-webserver-pod": ["other-team-web"]})), tmp_path)
    assert str(failure.value) == ("fault webserver not applied: the experiment terminated ['other-team-web'], "
                                  "expected pods among ['web-a']")


def test_an_experiment_that_terminated_nothing_is_not_applied(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    core = FakeCore({WEB: [pod("web-a", "uid-a")]})

    with pytest.raises(faults.FaultNotApplied, match="the experiment terminated nothing"):
        run_fault(monkeypatch, WEBSERVER_FAULT, core, Experiment(journal({"terminate-a-webserver-pod": []})),
                  tmp_path)


def test_every_targeted_part_must_have_lost_a_pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fault on several parts (all-three) whose experiment spared one of them is not applied."""
    fault = faults.Fault(name="all-three", experiment="kill-control-plane.yaml",
                         actions=("terminate-the-webserver-pods", "terminate-the-daemon-pods",
                                  "terminate-the-code-location-pods"),
                         selectors=(WEB, DAEMON, CODE))
    core = FakeCore({WEB: [pod("web-a", "uid-a")], DAEMON: [pod("daemon-a", "uid-d")], CODE: [pod("code-a", "uid-c")]})

    def kill_web_and_daemon() -> None:
        core.pods[WEB], core.pods[DAEMON] = [pod("web-b", "uid-a2")], [pod("daemon-b", "uid-d2")]

    outcome = journal({"terminate-the-webserver-pods": ["web-a"], "terminate-the-daemon-pods": ["daemon-a"],
                       "terminate-the-code-location-pods": []})
    with pytest.raises(faults.FaultNotApplied, match=f"no pod of {CODE} was terminated"):
        run_fault(monkeypatch, fault, core, Experiment(outcome, kill_web_and_daemon), tmp_path)


def test_the_experiment_gets_the_callers_variables_and_the_faults_own_win(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: Path) -> None:
    core = FakeCore({WEB: [pod("web-a", "uid-a")]})
    experiment = Experiment(journal({"terminate-a-webserver-pod": ["web-a"]}),
                            lambda: core.pods.update({WEB: [pod("web-b", "uid-b")]}))

    run_fault(monkeypatch, WEBSERVER_FAULT, core, experiment, tmp_path, recovery_timeout=30,
              variables={"webserver_service": "dagster-dagster-webserver", "webserver_selector": "stale"})

    assert experiment.calls == [{"experiment": "kill-webserver.yaml", "variables": {
        "webserver_service": "dagster-dagster-webserver", "webserver_selector": WEB,
        "namespace": NS, "recovery_timeout": 30}}]


def test_a_failed_kill_action_is_an_experiment_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    outcome = journal({"terminate-a-webserver-pod": None}, status="failed")
    outcome["run"][0].update(status="failed", exception=["ActivityFailed: no pods found"])

    with pytest.raises(chaos_run.ExperimentError, match="activity terminate-a-webserver-pod failed"):
        run_fault(monkeypatch, WEBSERVER_FAULT, FakeCore({WEB: [pod("web-a", "uid-a")]}), Experiment(outcome),
                  tmp_path)


# --- chaos.run_worker: exactly the run's pod, or its Job ----------------------------------------------------------

RUN_POD = pod("dagster-run-1a2b-xq7z", "uid-run-pod")
RUN_JOB = client.V1Job(metadata=client.V1ObjectMeta(name="dagster-run-1a2b", uid="uid-run-job", namespace=NS))


def apply_run_worker_fault(monkeypatch: pytest.MonkeyPatch, fault: Any, outcome: dict[str, Any], core: FakeCore,
                           batch: FakeBatch, tmp_path: Path) -> tuple[float, Experiment]:
    experiment = Experiment(outcome)
    monkeypatch.setattr(chaos_run, "run", experiment)
    at = fault.apply(core, batch, RUN_POD, RUN_JOB, {"namespace": NS, "run_id": "1a2b"}, tmp_path / "j.json",
                     tmp_path / "kubeconfig", None)
    return at, experiment


def test_killing_the_run_pod_is_proven_and_timed_by_the_journal(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    core, batch = FakeCore({}), FakeBatch()
    core.reads = [pod(RUN_POD.metadata.name, "uid-run-pod", deleting=True)]  # terminating, then gone

    at, experiment = apply_run_worker_fault(
        monkeypatch, RUN_POD_KILLED, journal({"terminate-the-run-pod": [RUN_POD.metadata.name]}), core, batch, tmp_path)

    assert at == datetime.fromisoformat(ENDED).timestamp()
    assert experiment.calls[0]["experiment"] == "kill-run-pod.yaml"
    assert core.read_calls == [f"pod {RUN_POD.metadata.name}"] * 2 and not batch.read_calls


def test_an_experiment_that_terminated_another_pod_fails_the_run_pod_fault(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path: Path) -> None:
    core, batch = FakeCore({}), FakeBatch()

    with pytest.raises(faults.FaultNotApplied) as failure:
        apply_run_worker_fault(monkeypatch, RUN_POD_KILLED,
                               journal({"terminate-the-run-pod": ["dagster-step-9f8e-abcd"]}), core, batch, tmp_path)

    assert "the experiment terminated ['dagster-step-9f8e-abcd'], not the pod dagster-run-1a2b-xq7z" in str(
        failure.value)
    assert not core.read_calls  # nothing is waited for on a fault that hit the wrong pod


def test_an_experiment_that_terminated_more_than_the_run_pod_fails_too(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path) -> None:
    outcome = journal({"terminate-the-run-pod": [RUN_POD.metadata.name, "dagster-step-9f8e-abcd"]})
    with pytest.raises(faults.FaultNotApplied, match="not the pod"):
        apply_run_worker_fault(monkeypatch, RUN_POD_KILLED, outcome, FakeCore({}), FakeBatch(), tmp_path)


def test_deleting_the_run_job_waits_for_the_job_and_then_its_pod_to_be_gone(monkeypatch: pytest.MonkeyPatch,
                                                                          tmp_path: Path) -> None:
    core, batch = FakeCore({}), FakeBatch()
    deleted = {"name": RUN_JOB.metadata.name, "uid": RUN_JOB.metadata.uid}

    apply_run_worker_fault(monkeypatch, RUN_JOB_DELETED, journal({"delete-the-run-job": deleted}), core, batch,
                           tmp_path)

    assert batch.read_calls == [f"job {RUN_JOB.metadata.name}"]
    assert core.read_calls == [f"pod {RUN_POD.metadata.name}"]


def test_a_deleted_job_of_the_same_name_but_another_uid_is_not_the_runs(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    outcome = journal({"delete-the-run-job": {"name": RUN_JOB.metadata.name, "uid": "uid-of-an-older-job"}})
    with pytest.raises(faults.FaultNotApplied, match="the experiment deleted"):
        apply_run_worker_fault(monkeypatch, RUN_JOB_DELETED, outcome, FakeCore({}), FakeBatch(), tmp_path)


def test_a_run_pod_that_is_replaced_under_its_name_counts_as_gone(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    core = FakeCore({})
    core.reads = [pod(RUN_POD.metadata.name, "uid-of-a-new-pod")]

    apply_run_worker_fault(monkeypatch, RUN_POD_KILLED, journal({"terminate-the-run-pod": [RUN_POD.metadata.name]}),
                           core, FakeBatch(), tmp_path)
    assert len(core.read_calls) == 1


def test_a_run_pod_that_never_goes_fails_naming_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    core = FakeCore({})
    core.reads = [pod(RUN_POD.metadata.name, "uid-run-pod")] * 1000  # never deleted

    with pytest.raises(WaitTimeout, match=f"pod {NS}/{RUN_POD.metadata.name} \\(uid-run-pod\\) to be gone; "
                                          "last seen: pod dagster-run-1a2b-xq7z still there, not being deleted"):
        apply_run_worker_fault(monkeypatch, RUN_POD_KILLED,
                               journal({"terminate-the-run-pod": [RUN_POD.metadata.name]}), core, FakeBatch(), tmp_path)

