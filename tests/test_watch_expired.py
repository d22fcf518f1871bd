"""Self-tests of observation.kube.watch_until when the apiserver forgets the watch's resourceVersion.

A watch started from a listing's resourceVersion can be answered with 410 Gone ("too old resource version"):
as an HTTP error (ApiException 410), or, more often, as an ERROR event with code 410 in the stream, which the
kubernetes client turns into ApiException 410 because the suite's watches have a timeout. Either way the wait
must list again and watch on from the new version, never fail. No cluster: a fake list function, a fake watch
stream (or the client's own Watch reading a fake HTTP response).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from kubernetes import client

from common.waits import WaitTimeout
from observation import kube


def pod(name: str, phase: str, resource_version: str, uid: str = "uid-1") -> client.V1Pod:
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, uid=uid, resource_version=resource_version),
                        status=client.V1PodStatus(phase=phase))


def listing(resource_version: str, *pods: client.V1Pod) -> client.V1PodList:
    return client.V1PodList(items=list(pods), metadata=client.V1ListMeta(resource_version=resource_version))


def finished(p: client.V1Pod) -> bool:
    return p.status.phase in ("Succeeded", "Failed")


class Lister:
    """``list_namespaced_pod`` answering with the next listing each time; records how it was called."""

    def __init__(self, *listings: client.V1PodList) -> None:
        self.listings, self.calls = list(listings), []

    def __call__(self, **kwargs: Any) -> client.V1PodList:
        self.calls.append(kwargs)
        return self.listings.pop(0) if len(self.listings) > 1 else self.listings[0]


class ScriptedWatch:
    """Stands in for kubernetes.watch.Watch: each stream() plays the next script (events, or an error to raise)."""

    scripts: ClassVar[list[Any]] = []
    started_from: ClassVar[list[str | None]] = []
    stopped = 0

    def stream(self, func: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
        ScriptedWatch.started_from.append(kwargs.get("resource_version"))
        script = ScriptedWatch.scripts.pop(0) if ScriptedWatch.scripts else []
        if isinstance(script, BaseException):
            raise script
        yield from script

    def stop(self) -> None:
        ScriptedWatch.stopped += 1


@pytest.fixture
def scripted_watch(monkeypatch: pytest.MonkeyPatch) -> type[ScriptedWatch]:
    ScriptedWatch.scripts, ScriptedWatch.started_from, ScriptedWatch.stopped = [], [], 0
    monkeypatch.setattr(kube.watch, "Watch", ScriptedWatch)
    return ScriptedWatch


def test_a_410_gone_from_the_watch_lists_again_and_watches_on_from_the_new_version(
        scripted_watch: type[ScriptedWatch]) -> None:
    lister = Lister(listing("100", pod("run-pod", "Running", "99")), listing("250", pod("run-pod", "Running", "240")))
    scripted_watch.scripts = [
        client.ApiException(status=410, reason="Gone: too old resource version: 100 (200)"),
        [{"type": "MODIFIED", "object": pod("run-pod", "Succeeded", "251")}],
    ]

    found = kube.watch_until(lister, "run-pod to finish", finished, timeout=5, namespace="ns")

    assert found.status.phase == "Succeeded"
    assert scripted_watch.started_from == ["100", "250"]  # the second watch starts from the re-listing
    assert len(lister.calls) == 2 and all(call["namespace"] == "ns" for call in lister.calls)
    assert scripted_watch.stopped == 2  # every watch is stopped, the expired one too


def test_several_expiries_in_a_row_are_each_answered_by_a_new_listing(scripted_watch: type[ScriptedWatch]) -> None:
    lister = Lister(listing("1"), listing("2"), listing("3"))
    scripted_watch.scripts = [client.ApiException(status=410), client.ApiException(status=410),
                              [{"type": "ADDED", "object": pod("job-pod", "Failed", "4")}]]

    found = kube.watch_until(lister, "job-pod to finish", finished, timeout=5)

    assert found.metadata.name == "job-pod"
    assert scripted_watch.started_from == ["1", "2", "3"]


def test_an_object_that_got_there_while_the_watch_was_gone_is_found_in_the_new_listing(
        scripted_watch: type[ScriptedWatch]) -> None:
    lister = Lister(listing("100", pod("p", "Running", "99")), listing("250", pod("p", "Succeeded", "240")))
    scripted_watch.scripts = [client.ApiException(status=410, reason="Gone")]  # then nothing changes any more

    found = kube.watch_until(lister, "p to finish", finished, timeout=5)

    assert found.status.phase == "Succeeded"
    assert scripted_watch.started_from == ["100"], "no second watch: the listing already showed it done"


def test_the_watch_goes_on_from_the_last_event_it_saw_when_the_server_closes_it(
        scripted_watch: type[ScriptedWatch]) -> None:
    """A watch the server ends (its timeoutSeconds) is not an expiry: no listing, the next one resumes."""
    lister = Lister(listing("10"))
    scripted_watch.scripts = [[{"type": "MODIFIED", "object": pod("p", "Running", "11")}],
                              [{"type": "MODIFIED", "object": pod("p", "Succeeded", "12")}]]

    assert kube.watch_until(lister, "p to finish", finished, timeout=5).status.phase == "Succeeded"
    assert scripted_watch.started_from == ["10", "11"]
    assert len(lister.calls) == 1


def test_other_api_errors_of_the_watch_are_not_taken_for_an_expiry(scripted_watch: type[ScriptedWatch]) -> None:
    lister = Lister(listing("1"))
    scripted_watch.scripts = [client.ApiException(status=403, reason="Forbidden")]

    with pytest.raises(client.ApiException) as failure:
        kube.watch_until(lister, "p to finish", finished, timeout=5)
    assert failure.value.status == 403
    assert len(lister.calls) == 1  # no re-listing


def test_a_deleted_object_never_counts_as_done(scripted_watch: type[ScriptedWatch]) -> None:
    lister = Lister(listing("1"))
    scripted_watch.scripts = [[{"type": "DELETED", "object": pod("p", "Succeeded", "2")}]]

    with pytest.raises(WaitTimeout) as failure:
        kube.watch_until(lister, "p to finish", finished, timeout=0.2)
    assert "DELETED p" in str(failure.value)


# --- the client's own Watch, reading an ERROR event with code 410 from a fake HTTP response ----------------------

class Response:
    """What a watch request returns with _preload_content=False: lines of JSON events."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.body = "".join(json.dumps(event) + "\n" for event in events).encode()

    def stream(self, amt: Any = None, decode_content: bool = False) -> Iterator[bytes]:
        yield self.body

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


def raw_pod(name: str, phase: str, resource_version: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "status": {"phase": phase},
            "metadata": {"name": name, "uid": "uid-1", "resourceVersion": resource_version}}


EXPIRED = {"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                                       "reason": "Expired", "message": "too old resource version: 5 (40)"}}


class PodApi:
    """A list_namespaced_pod that lists, or (watch=True) answers with the next scripted stream of events."""

    def __init__(self, listings: list[client.V1PodList], streams: list[list[dict[str, Any]]]) -> None:
        self.listings, self.streams, self.watched_from = listings, streams, []

    def list_namespaced_pod(self, namespace: str, **kwargs: Any) -> Any:
        """A fake of CoreV1Api.list_namespaced_pod.

        :rtype: V1PodList
        """
        if kwargs.get("watch"):
            self.watched_from.append(kwargs.get("resource_version"))
            return Response(self.streams.pop(0) if self.streams else [])
        return self.listings.pop(0)


def test_an_error_event_with_code_410_lists_again_and_watches_on() -> None:
    api = PodApi([listing("5", pod("p", "Running", "5")), listing("40", pod("p", "Running", "40"))],
                 [[EXPIRED], [{"type": "MODIFIED", "object": raw_pod("p", "Succeeded", "41")}]])

    found = kube.watch_until(api.list_namespaced_pod, "p to finish", finished, timeout=5, namespace="ns")

    assert (found.metadata.name, found.status.phase) == ("p", "Succeeded")
    assert api.watched_from == ["5", "40"]
    assert not api.listings  # listed twice: before watching, and after the expiry


def test_an_error_event_with_another_code_fails_the_wait() -> None:
    broken = {"type": "ERROR", "object": {"kind": "Status", "code": 500, "reason": "InternalError",
                                          "message": "etcd is gone"}}
    api = PodApi([listing("5")], [[broken]])

    with pytest.raises(client.ApiException) as failure:
        kube.watch_until(api.list_namespaced_pod, "p to finish", finished, timeout=5, namespace="ns")
    assert failure.value.status == 500


def test_wait_pod_finished_survives_an_expired_watch() -> None:
    """The waits built on watch_until (here: a cleaner pod finishing) inherit the recovery."""
    api = PodApi([listing("5", pod("cleaner", "Pending", "5")), listing("9", pod("cleaner", "Running", "9"))],
                 [[EXPIRED], [{"type": "MODIFIED", "object": raw_pod("cleaner", "Succeeded", "10")}]])

    found = kube.wait_pod_finished(api, "ns", "cleaner", timeout=5)  # type: ignore[arg-type]

    assert found.status.phase == "Succeeded"
