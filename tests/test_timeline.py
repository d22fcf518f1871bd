"""Self-tests: watch events fold into pod spans, labels name components, and the timeline draws as a PNG."""

from __future__ import annotations

import json
import struct
import threading
from dataclasses import replace
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from kubernetes import client

from common.waits import Observation, wait_for
from deploy.names import component_of
from observation.timeline import PodSpan, PodTimeline, fold
from reports.timeline import MAX_ROWS, render_png

T0 = 1_700_000_000.0  # the recording starts here
WEBSERVER = {"component": "dagster-webserver", "app.kubernetes.io/instance": "dagster"}
RUN_ID = "1a2b3c4d-0000-4000-8000-000000000000"
RUN_POD = {"dagster/run-id": RUN_ID, "dagster/job": "hello", "app.kubernetes.io/component": "run_worker"}


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, tz=timezone.utc)


def pod(name: str, uid: str, labels: dict[str, str], created: float, phase: str = "Pending",
        ready_since: float | None = None, deleted: float | None = None, grace: int | None = None,
        finished: float | None = None) -> client.V1Pod:
    """A pod as the API would return it, with only the fields the fold reads."""
    conditions = [client.V1PodCondition(type="Ready", status="True" if ready_since is not None else "False",
                                        last_transition_time=at(ready_since) if ready_since is not None else None)]
    statuses = []
    if finished is not None:
        terminated = client.V1ContainerStateTerminated(exit_code=0 if phase == "Succeeded" else 1,
                                                       started_at=at(created), finished_at=at(finished))
        statuses.append(client.V1ContainerStatus(name="dagster", image="img", image_id="", ready=False,
                                                 restart_count=0, state=client.V1ContainerState(terminated=terminated)))
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, uid=uid, labels=labels, creation_timestamp=at(created),
                                     deletion_timestamp=at(deleted) if deleted is not None else None,
                                     deletion_grace_period_seconds=grace),
        status=client.V1PodStatus(phase=phase, conditions=conditions, container_statuses=statuses),
    )


def by_uid(spans: list[PodSpan]) -> dict[str, PodSpan]:
    return {span.uid: span for span in spans}


def test_a_deleted_pod_and_its_replacement_are_two_spans() -> None:
    name = "dagster-webserver-7c9d-abcde"  # a StatefulSet-like replacement may even reuse the name
    events = [
        ("ADDED", pod(name, "u1", WEBSERVER, created=1), T0 + 1),
        ("MODIFIED", pod(name, "u1", WEBSERVER, created=1, phase="Running", ready_since=4), T0 + 4.2),
        ("MODIFIED", pod(name, "u1", WEBSERVER, created=1, phase="Running", ready_since=4, deleted=40, grace=30),
         T0 + 10.1),
        ("DELETED", pod(name, "u1", WEBSERVER, created=1, phase="Running", ready_since=4, deleted=40, grace=30),
         T0 + 12),
        ("ADDED", pod(name, "u2", WEBSERVER, created=10.5), T0 + 10.6),
        ("MODIFIED", pod(name, "u2", WEBSERVER, created=10.5, phase="Running", ready_since=15), T0 + 15.3),
    ]
    spans = fold(events, component_of)
    assert [span.uid for span in spans] == ["u1", "u2"], "one span per uid, sorted by creation"
    first, second = spans
    assert first == PodSpan(name, "u1", "webserver", T0 + 1, T0 + 4, T0 + 10, "deleted", T0 + 12), \
        "ended when the delete was asked for (deletionTimestamp minus the grace period), gone at the DELETED event"
    assert second == PodSpan(name, "u2", "webserver", T0 + 10.5, T0 + 15, None, None), "the replacement is still up"


def test_ready_falls_back_to_when_it_was_first_seen_ready() -> None:
    ready = pod("p", "u1", WEBSERVER, created=0, phase="Running", ready_since=3)
    ready.status.conditions[0].last_transition_time = None
    later = pod("p", "u1", WEBSERVER, created=0, phase="Running", ready_since=9)
    [span] = fold([("ADDED", ready, T0 + 5), ("MODIFIED", later, T0 + 9)], component_of)
    assert span.ready == T0 + 5, "the first time it was seen Ready wins"


def test_a_deleted_event_without_a_deletion_timestamp_ends_at_when_it_was_seen() -> None:
    running = pod("p", "u1", WEBSERVER, created=0, phase="Running", ready_since=2)
    [span] = fold([("ADDED", running, T0 + 1), ("DELETED", running, T0 + 7)], component_of)
    assert (span.ended, span.end_reason) == (T0 + 7, "deleted"), span


def test_a_run_pod_that_succeeded_ends_when_its_container_finished() -> None:
    events = [
        ("ADDED", pod("dagster-run-1a2b-x", "r1", RUN_POD, created=20), T0 + 20),
        ("MODIFIED", pod("dagster-run-1a2b-x", "r1", RUN_POD, created=20, phase="Running", ready_since=23), T0 + 23),
        ("MODIFIED", pod("dagster-run-1a2b-x", "r1", RUN_POD, created=20, phase="Succeeded", finished=31), T0 + 32),
        # Job cleanup deletes it later: it had finished, so it was not cut short.
        ("DELETED", pod("dagster-run-1a2b-x", "r1", RUN_POD, created=20, phase="Succeeded", finished=31,
                        deleted=60, grace=0), T0 + 60),
    ]
    [span] = fold(events, component_of)
    assert span == PodSpan("dagster-run-1a2b-x", "r1", "run 1a2b3c4d", T0 + 20, T0 + 23, T0 + 31, "Succeeded", T0 + 60)


def test_a_pod_deleted_while_running_stays_deleted_when_it_then_fails() -> None:
    events = [
        ("ADDED", pod("p", "u1", RUN_POD, created=0, phase="Running", ready_since=1), T0 + 1),
        ("MODIFIED", pod("p", "u1", RUN_POD, created=0, phase="Running", ready_since=1, deleted=5, grace=0), T0 + 5),
        ("MODIFIED", pod("p", "u1", RUN_POD, created=0, phase="Failed", finished=6, deleted=5, grace=0), T0 + 6),
    ]
    [span] = fold(events, component_of)
    assert (span.ended, span.end_reason) == (T0 + 5, "deleted"), span


def test_a_pod_from_before_the_recording_keeps_its_own_times() -> None:
    old = pod("dagster-daemon-5f-abcde", "d1", {"component": "dagster-daemon"}, created=-600, phase="Running",
              ready_since=-590)
    [span] = fold([("ADDED", old, T0)], component_of)
    assert (span.component, span.created, span.ready, span.ended) == ("daemon", T0 - 600, T0 - 590, None)


def test_spans_sort_by_component_then_creation() -> None:
    events = [
        ("ADDED", pod("w2", "w2", WEBSERVER, created=5), T0 + 5),
        ("ADDED", pod("d", "d", {"component": "dagster-daemon"}, created=9), T0 + 9),
        ("ADDED", pod("w1", "w1", WEBSERVER, created=1), T0 + 1),
    ]
    assert [span.name for span in fold(events, component_of)] == ["d", "w1", "w2"]


@pytest.mark.parametrize(("labels", "component"), [
    ({"component": "dagster-webserver"}, "webserver"),
    ({"component": "dagster-daemon"}, "daemon"),
    ({"component": "user-deployments", "deployment": "sample"}, "code location sample"),
    ({"component": "celery"}, "celery worker"),
    ({"component": "postgresql"}, "postgresql"),
    ({"component": "redis"}, "broker"),
    (RUN_POD, "run 1a2b3c4d"),
    ({**RUN_POD, "app.kubernetes.io/component": "step_worker", "dagster/op": "add_one"}, "step add_one"),
    ({**RUN_POD, "app.kubernetes.io/component": "step_worker", "dagster/step-key": "emit.0"}, "step emit.0"),
    ({**RUN_POD, "app.kubernetes.io/component": "step_worker"}, "step step"),
    ({**RUN_POD, "app.kubernetes.io/component": "k8s_job_op", "dagster/op": "external"}, "external job"),
    ({"dagster/run-id": RUN_ID}, "other"),
    ({"app": "coredns"}, "other"),
    ({}, "other"),
])
def test_component_names_what_the_pod_is(labels: dict[str, str], component: str) -> None:
    assert component_of(labels) == component


def test_component_of_a_pod_without_labels_is_other() -> None:
    assert component_of(None) == "other"


def sample_spans() -> list[PodSpan]:
    return [
        PodSpan("dagster-dagster-webserver-7c9d8f-abcde", "w1", "webserver", T0 - 300, T0 - 290, T0 + 30, "deleted"),
        PodSpan("dagster-dagster-webserver-7c9d8f-fghij", "w2", "webserver", T0 + 31, T0 + 44, None, None),
        PodSpan("dagster-daemon-5f-abcde", "d1", "daemon", T0 - 300, T0 - 280, None, None),
        PodSpan("dagster-user-deployments-sample-6d-xyz12", "c1", "code location sample", T0 - 200, T0 - 190,
                None, None),
        PodSpan("dagster-run-1a2b3c4d-0000-4000-8000-000000000000-x7", "r1", "run 1a2b3c4d", T0 + 5, T0 + 9,
                T0 + 80, "Succeeded"),
        PodSpan("dagster-step-9f8e7d-abcde", "s1", "step add_one", T0 + 12, None, T0 + 20, "Failed"),
        PodSpan("dagster-postgresql-0", "p1", "postgresql", T0 - 400, T0 - 395, None, None),
        PodSpan("long-gone", "g1", "other", T0 - 900, T0 - 890, T0 - 800, "Succeeded"),  # before: not drawn
    ]


def test_render_draws_spans_and_marks_as_png() -> None:
    marks = [("fault: webserver deleted", T0 + 30), ("RUN_SUCCESS", T0 + 81), ("after the end", T0 + 500)]
    png = render_png(sample_spans(), marks, "webserver killed mid-run", start=T0, end=T0 + 90)
    assert png.startswith(b"\x89PNG"), "a PNG file"


def test_render_draws_an_empty_chart_without_pods() -> None:
    assert render_png([], [], "nothing here", start=T0, end=T0 + 10).startswith(b"\x89PNG")
    assert render_png([], [("RUN_SUCCESS", T0 + 5)], "zero length", start=T0, end=T0).startswith(b"\x89PNG")


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which always comes first."""
    return struct.unpack(">II", png[16:24])


def test_render_caps_the_rows() -> None:
    many = [PodSpan(f"step-{i}", f"u{i}", f"step op_{i:03}", T0 + i, T0 + i + 1, T0 + i + 5, "Succeeded")
            for i in range(MAX_ROWS + 15)]
    capped = render_png(many, [], "capped", start=T0, end=T0 + 100)
    assert capped.startswith(b"\x89PNG")
    assert png_size(capped) == png_size(render_png(many[:MAX_ROWS], [], "capped", start=T0, end=T0 + 100)), \
        "the pods past the cap are left off, not drawn"
    assert png_size(capped)[1] > png_size(render_png(many[:3], [], "few", start=T0, end=T0 + 100))[1], \
        "the chart grows with its rows"


def api_pod(uid: str, resource_version: str, ready: bool = False, deleted: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": "web", "uid": uid, "resourceVersion": resource_version, "labels": WEBSERVER,
                            "creationTimestamp": "2025-01-01T00:00:00Z"}
    if deleted:
        meta |= {"deletionTimestamp": deleted, "deletionGracePeriodSeconds": 30}
    ready_condition = {"type": "Ready", "status": str(ready), "lastTransitionTime": "2025-01-01T00:00:05Z"}
    return {"kind": "Pod", "apiVersion": "v1", "metadata": meta,
            "status": {"phase": "Running", "conditions": [ready_condition]}}


class FakePodsApi(BaseHTTPRequestHandler):
    """Lists one pod; the 1st watch brings it Ready then a bookmark, the 2nd expires (410), the 3rd deletes it."""

    protocol_version = "HTTP/1.1"
    watches: ClassVar[list[str]] = []
    release = threading.Event()

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if "watch=True" not in self.path:
            listing = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "10"},
                       "items": [api_pod("u1", "9")]}
            body = json.dumps(listing).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.watches.append(self.path)
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        bookmark = {"kind": "Pod", "apiVersion": "v1", "metadata": {"resourceVersion": "12"}}
        expired = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old resource version"}
        events = [[{"type": "MODIFIED", "object": api_pod("u1", "11", ready=True)},
                   {"type": "BOOKMARK", "object": bookmark}],
                  [{"type": "ERROR", "object": expired}],
                  [{"type": "DELETED", "object": api_pod("u1", "13", ready=True, deleted="2025-01-01T00:01:00Z")}]]
        for event in events[min(len(self.watches), 3) - 1]:
            line = (json.dumps(event) + "\n").encode()
            self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
            self.wfile.flush()
        if len(self.watches) >= 3:
            self.release.wait(30)  # an open stream: stopping the recorder must not wait for it
        self.wfile.write(b"0\r\n\r\n")


def test_the_recorder_resumes_after_bookmarks_relists_after_410_and_stops_at_once() -> None:
    FakePodsApi.watches.clear()
    FakePodsApi.release.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakePodsApi)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.server_port}"
    try:
        with PodTimeline(client.ApiClient(configuration), "ns", component_of) as timeline:
            timeline.mark("RUN_SUCCESS", at=T0)
            wait_for("the recorder to see the pod deleted",
                     lambda: Observation(bool(timeline.spans()[0].ended), str(timeline.spans())), timeout=20,
                     interval=0.05)
        assert not timeline._thread.is_alive(), "stopping closes the open watch instead of waiting for it"
    finally:
        FakePodsApi.release.set()
        server.shutdown()
    started = datetime(2025, 1, 1, tzinfo=timezone.utc).timestamp()
    [span] = timeline.spans()
    assert span.gone is not None, "the DELETED event says when the pod was gone"
    assert replace(span, gone=None) == PodSpan("web", "u1", "webserver", started, started + 5, started + 30, "deleted")
    assert timeline.marks() == [("RUN_SUCCESS", T0)]
    assert timeline.last_error is None, timeline.last_error
    assert [w.split("resourceVersion=")[1].split("&")[0] for w in FakePodsApi.watches] == ["10", "12", "10"], \
        "resumed from the bookmark, listed again after 410 Gone"
