"""Which pod of which component was up when: pod spans folded from a Kubernetes watch.

``fold`` is pure (events in, spans out) so it is tested without a cluster; ``PodTimeline`` records the
events of one namespace on a daemon thread while a test runs, and ``reports.timeline`` draws the result.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

from kubernetes import client, watch

__all__ = ["Describe", "PodSpan", "PodTimeline", "fold"]

# What a pod is, from its labels, in words a reader of the report knows ("webserver", "run 1a2b3c4d"): the
# chart's labels are deploy/names.py's (deploy.names.component_of), a room above this one.
Describe = Callable[[dict[str, str] | None], str]

FINISHED_PHASES = ("Succeeded", "Failed")


@dataclass
class PodSpan:
    """One pod's life as far as we saw it; times are epoch seconds."""

    name: str
    uid: str
    component: str
    created: float
    ready: float | None = None
    ended: float | None = None
    end_reason: str | None = None  # "deleted", or the phase it finished in: "Succeeded" / "Failed"
    gone: float | None = None  # when the pod object was removed (its processes had exited): the watch's DELETED


def _epoch(moment: datetime | None) -> float | None:
    if moment is None:
        return None
    if moment.tzinfo is None:  # the API speaks UTC; a naive datetime here is UTC, not local time
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def _ready_since(pod: client.V1Pod, seen_at: float) -> float | None:
    for condition in (pod.status and pod.status.conditions) or []:
        if condition.type == "Ready" and condition.status == "True":
            return _epoch(condition.last_transition_time) or seen_at
    return None


def _finished_at(pod: client.V1Pod, seen_at: float) -> float | None:
    """When a Succeeded/Failed pod's last container stopped; None while it has not finished."""
    if not pod.status or pod.status.phase not in FINISHED_PHASES:
        return None
    stops = [_epoch(status.state.terminated.finished_at) for status in pod.status.container_statuses or []
             if status.state and status.state.terminated and status.state.terminated.finished_at]
    return max(stops, default=seen_at)


def _deleted_at(pod: client.V1Pod) -> float | None:
    """When the delete was asked for: deletionTimestamp is that moment plus the grace period.

    The pod leaves its Service's endpoints at the request, so that is where it stops being up.
    """
    meta = pod.metadata
    deadline = _epoch(meta.deletion_timestamp)
    if deadline is None:
        return None
    return deadline - (meta.deletion_grace_period_seconds or 0)


class _Spans:
    """The fold's state, kept between events so a recorder need not keep every pod it saw."""

    def __init__(self, describe: Describe) -> None:
        self._describe = describe
        self._by_uid: dict[str, PodSpan] = {}

    def add(self, event_type: str, pod: client.V1Pod, seen_at: float) -> None:
        meta = pod.metadata
        uid = meta.uid or meta.name  # a replacement pod with the same name has a new uid, so a new span
        span = self._by_uid.get(uid)
        if span is None:
            span = PodSpan(meta.name, uid, self._describe(meta.labels), _epoch(meta.creation_timestamp) or seen_at)
            self._by_uid[uid] = span
        if event_type == "DELETED" and span.gone is None:
            span.gone = seen_at
        if span.ended is not None:  # the first end wins: a pod deleted while running then "Failed" was deleted
            return
        if span.ready is None:
            span.ready = _ready_since(pod, seen_at)
        if (finished := _finished_at(pod, seen_at)) is not None:
            span.ended, span.end_reason = finished, pod.status.phase
        elif (deleted := _deleted_at(pod)) is not None or event_type == "DELETED":
            span.ended, span.end_reason = deleted if deleted is not None else seen_at, "deleted"

    def vanished(self, present: set[str], seen_at: float) -> None:
        """Pods missing from a fresh listing went while we were not watching (after 410 Gone)."""
        for uid, span in self._by_uid.items():
            if uid not in present and span.ended is None:
                span.ended, span.end_reason = seen_at, "deleted"
            if uid not in present and span.gone is None:
                span.gone = seen_at

    def spans(self) -> list[PodSpan]:
        return sorted((replace(span) for span in self._by_uid.values()), key=lambda s: (s.component, s.created))


def fold(events: Iterable[tuple[str, client.V1Pod, float]], describe: Describe) -> list[PodSpan]:
    """Fold ``(event_type, pod, seen_at)`` watch events into one span per pod uid, sorted by (component, created);
    ``describe`` names each pod's component."""
    spans = _Spans(describe)
    for event_type, pod, seen_at in events:
        spans.add(event_type, pod, seen_at)
    return spans.spans()


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}"


class PodTimeline:
    """Records the pods of one namespace while a test runs (a context manager around a daemon watch thread).

    Recording never fails the test: API errors are kept in ``last_error`` and the watch is retried.
    """

    def __init__(self, api: client.ApiClient, namespace: str, describe: Describe, watch_timeout: int = 5,
                 backoff: float = 2.0) -> None:
        self.namespace = namespace
        self.started: float | None = None
        self.stopped: float | None = None
        self.last_error: str | None = None
        self._core = client.CoreV1Api(api)
        self._watch_timeout = watch_timeout  # short, so the thread notices stop without a forced close
        self._backoff = backoff
        self._lock = threading.Lock()
        self._spans = _Spans(describe)
        self._marks: list[tuple[str, float]] = []
        self._stop = threading.Event()
        self._watcher: watch.Watch | None = None
        self._thread = threading.Thread(target=self._run, name=f"pod-timeline-{namespace}", daemon=True)

    def __enter__(self) -> PodTimeline:
        self.started = time.time()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stopped = time.time()
        self._stop.set()
        if (watcher := self._watcher) is not None:
            watcher.stop()  # unblocks a read in progress instead of waiting for the server's timeout
        self._thread.join(timeout=self._watch_timeout + 10)

    def mark(self, label: str, at: float | None = None) -> None:
        """Record a labelled instant, e.g. ``mark("RUN_SUCCESS")`` or the moment a fault was injected."""
        with self._lock:
            self._marks.append((label, time.time() if at is None else at))

    def spans(self) -> list[PodSpan]:
        with self._lock:
            return self._spans.spans()

    def marks(self) -> list[tuple[str, float]]:
        with self._lock:
            return sorted(self._marks, key=lambda mark: mark[1])

    def _run(self) -> None:
        resource_version: str | None = None
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    resource_version = self._list()
                resource_version = self._watch(resource_version)
            except client.ApiException as exc:
                if exc.status == 410:  # our resource version expired: list again, then watch from there
                    resource_version = None
                    continue
                self._failed(exc)
            except Exception as exc:  # the recorder is evidence, not a verdict: keep the error, retry
                self._failed(exc)

    def _failed(self, exc: Exception) -> None:
        if self._stop.is_set():  # stop() closing the socket under a read is not an error
            return
        with self._lock:
            self.last_error = _error_line(exc)
        self._stop.wait(self._backoff)

    def _list(self) -> str:
        listing = self._core.list_namespaced_pod(self.namespace, _request_timeout=30)
        seen_at = time.time()
        with self._lock:
            for pod in listing.items:
                self._spans.add("ADDED", pod, seen_at)
            self._spans.vanished({pod.metadata.uid for pod in listing.items}, seen_at)
        return listing.metadata.resource_version

    def _watch(self, resource_version: str) -> str:
        """One short watch from ``resource_version``; returns where the next one resumes."""
        watcher = watch.Watch()
        self._watcher = watcher
        try:
            for event in watcher.stream(self._core.list_namespaced_pod, self.namespace,
                                        resource_version=resource_version, allow_watch_bookmarks=True,
                                        timeout_seconds=self._watch_timeout,
                                        _request_timeout=self._watch_timeout + 10):
                self._record(event)
                if self._stop.is_set():
                    break
        finally:
            watcher.stop()
            self._watcher = None
        return watcher.resource_version or resource_version  # bookmarks move it on too

    def _record(self, event: dict[str, Any]) -> None:
        if event["type"] not in ("ADDED", "MODIFIED", "DELETED"):  # BOOKMARK carries no pod
            return
        with self._lock:
            self._spans.add(event["type"], event["object"], time.time())
