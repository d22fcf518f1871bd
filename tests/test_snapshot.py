"""What a test's report shows of Kubernetes events and a run's event log: filtered, ordered, one line each."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

from kubernetes import client

from dagster_api import RunEvent
from observation.snapshot import as_documents, event_log, events_since

T0 = datetime(2026, 11, 24, 20, 0, 0, tzinfo=timezone.utc)


def event(name: str, reason: str, seconds: int, count: int = 1) -> client.CoreV1Event:
    at = T0.replace(second=seconds)
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=f"{name}.{seconds}", creation_timestamp=at),
        involved_object=client.V1ObjectReference(kind="Pod", name=name), reason=reason, type="Normal",
        message=f"{reason} {name}\n", count=count, last_timestamp=at)


class FakeCore:
    def __init__(self, events: list[client.CoreV1Event]) -> None:
        self.events = events

    def list_namespaced_event(self, namespace: str) -> Any:
        return SimpleNamespace(items=self.events)


def test_events_since_the_test_started_oldest_first() -> None:
    core = FakeCore([event("web-2", "Started", 30), event("old", "Pulled", 1), event("web-1", "Killing", 20, 2)])
    lines = events_since(core, "ns", since=T0.replace(second=10).timestamp())  # type: ignore[arg-type]
    assert [line.split()[3] for line in lines] == ["Pod/web-1:", "Pod/web-2:"]
    assert lines[0].startswith("20:00:20.000  Normal  Killing") and lines[0].endswith("Killing web-1 (x2)")


def test_event_log_lines_carry_type_step_and_error() -> None:
    events = [RunEvent("ExecutionStepFailureEvent", "STEP_FAILURE", "hold", "step failed", T0.timestamp(), None, {},
                       "RuntimeError: boom"),
              RunEvent("LogMessageEvent", None, None, "hello", T0.timestamp() + 1.5, "INFO", {}, None)]
    lines = event_log(SimpleNamespace(run_events=lambda run_id: events), "run-1")  # type: ignore[arg-type]
    assert lines[0].split()[1:3] == ["STEP_FAILURE", "hold"] and lines[0].endswith("\n    RuntimeError: boom")
    assert lines[1].startswith("20:00:01.500  INFO") and lines[1].endswith("hello")


def test_documents_drop_managed_fields() -> None:
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="p", managed_fields=[
        client.V1ManagedFieldsEntry(manager="kubelet", operation="Update")]))
    (doc,) = as_documents(client.ApiClient(), [pod])
    assert doc == {"metadata": {"name": "p"}}
