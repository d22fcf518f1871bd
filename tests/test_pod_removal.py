"""Self-tests of observation.kube.wait_pod_removed (a pod's removal, watched from a state read earlier) and of
rollout_complete's rule that a replaced pod still terminating means the rollout has not finished. No cluster:
the scripted watch and listings of test_watch_expired, a fake apps/core API."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import pytest
from kubernetes import client

from observation import kube
from tests.test_watch_expired import Lister, ScriptedWatch, listing, pod

WHEN = datetime(2026, 12, 1, 20, 0, 30, tzinfo=timezone.utc)


@pytest.fixture(name="scripted_watch")
def scripted_watch_fixture(monkeypatch: pytest.MonkeyPatch) -> type[ScriptedWatch]:
    ScriptedWatch.scripts, ScriptedWatch.started_from, ScriptedWatch.stopped = [], [], 0
    monkeypatch.setattr(kube.watch, "Watch", ScriptedWatch)
    return ScriptedWatch


def deleting(p: client.V1Pod, grace: int) -> client.V1Pod:
    p.metadata.deletion_timestamp, p.metadata.deletion_grace_period_seconds = WHEN, grace
    return p


def test_the_removal_keeps_the_first_deleting_state_and_the_last(scripted_watch: type[ScriptedWatch]) -> None:
    scripted_watch.scripts = [[
        {"type": "MODIFIED", "object": deleting(pod("worker", "Running", "11"), 30)},
        {"type": "MODIFIED", "object": deleting(pod("worker", "Failed", "12"), 0)},  # the kubelet's final delete
        {"type": "DELETED", "object": deleting(pod("worker", "Failed", "13"), 0)},
    ]]
    core = SimpleNamespace(list_namespaced_pod=Lister(listing("10")))

    removal = kube.wait_pod_removed(core, "ns", pod("worker", "Running", "10"), timeout=5)  # type: ignore[arg-type]

    assert removal.deleting is not None and removal.deleting.metadata.deletion_grace_period_seconds == 30
    assert removal.last.metadata.resource_version == "13"
    assert scripted_watch.started_from == ["10"], "watched from the state read before the fault: replayed"


def test_a_410_after_the_pod_is_gone_returns_what_was_seen(scripted_watch: type[ScriptedWatch]) -> None:
    scripted_watch.scripts = [[{"type": "MODIFIED", "object": deleting(pod("worker", "Running", "11"), 30)}],
                              client.ApiException(status=410, reason="Gone")]
    core = SimpleNamespace(list_namespaced_pod=Lister(listing("20")))  # no pod of that uid any more

    removal = kube.wait_pod_removed(core, "ns", pod("worker", "Running", "10"), timeout=5)  # type: ignore[arg-type]

    assert removal.last.metadata.resource_version == "11"


def test_a_new_pod_of_the_same_name_means_ours_is_gone(scripted_watch: type[ScriptedWatch]) -> None:
    scripted_watch.scripts = [[{"type": "ADDED", "object": pod("worker", "Pending", "30", uid="uid-2")}]]
    core = SimpleNamespace(list_namespaced_pod=Lister(listing("10")))

    removal = kube.wait_pod_removed(core, "ns", pod("worker", "Running", "10"), timeout=5)  # type: ignore[arg-type]

    assert removal.last.metadata.uid == "uid-1" and removal.deleting is None


def rolled_out_deployment() -> client.V1Deployment:
    return client.V1Deployment(
        metadata=client.V1ObjectMeta(name="workers", generation=2),
        spec=client.V1DeploymentSpec(replicas=1, selector=client.V1LabelSelector(match_labels={"component": "celery"}),
                                     template=client.V1PodTemplateSpec()),
        status=client.V1DeploymentStatus(observed_generation=2, updated_replicas=1, available_replicas=1, replicas=1))


def test_a_rollout_is_not_complete_while_a_replaced_pod_is_terminating(monkeypatch: pytest.MonkeyPatch) -> None:
    pods = [pod("workers-new", "Running", "1"), deleting(pod("workers-old", "Running", "2", uid="uid-0"), 30)]
    selectors: list[str] = []

    class Core:
        def __init__(self, api: Any) -> None:
            pass

        def list_namespaced_pod(self, namespace: str, label_selector: str, **kwargs: Any) -> client.V1PodList:
            selectors.append(label_selector)
            return listing("5", *pods)

    monkeypatch.setattr(kube.client, "CoreV1Api", Core)
    apps = SimpleNamespace(api_client=None, read_namespaced_deployment=lambda *a, **k: rolled_out_deployment())

    found = kube.rollout_complete(apps, "ns", "workers")  # type: ignore[arg-type]
    assert not found.done and "still terminating: workers-old" in found.seen
    assert selectors == ["component=celery"]

    pods.pop()
    assert kube.rollout_complete(apps, "ns", "workers").done  # type: ignore[arg-type]
