"""What Kubernetes and Dagster show about a test's runs, as plain data: pod specs, events, event logs.

Read after the test (for its report), so nothing here waits: it takes what is there now.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from kubernetes import client

from dagster_api import DagsterWebserver, RunEvent
from observation.labels import run_selector


def pods_of_run(core: client.CoreV1Api, namespace: str, run_id: str) -> list[client.V1Pod]:
    """The run's pods that still exist (run, step and external job pods carry the run id label)."""
    return core.list_namespaced_pod(namespace, label_selector=run_selector(run_id)).items


def as_documents(api: client.ApiClient, objects: list[Any]) -> list[dict[str, Any]]:
    """API objects as the plain documents ``kubectl get -o yaml`` shows, without the managedFields noise."""
    documents = []
    for obj in objects:
        doc = api.sanitize_for_serialization(obj)
        doc.get("metadata", {}).pop("managedFields", None)
        documents.append(doc)
    return documents


def _event_time(event: client.CoreV1Event) -> datetime | None:
    return event.last_timestamp or event.event_time or event.first_timestamp or event.metadata.creation_timestamp


def events_since(core: client.CoreV1Api, namespace: str, since: float) -> list[str]:
    """The namespace's Kubernetes events seen at or after ``since`` (epoch seconds), oldest first, one line each."""
    lines = []
    for event in core.list_namespaced_event(namespace).items:
        at = _event_time(event)
        if at is None or at.timestamp() < since - 1:
            continue
        target = f"{event.involved_object.kind}/{event.involved_object.name}"
        count = f" (x{event.count})" if event.count and event.count > 1 else ""
        lines.append((at, f"{_clock(at.timestamp())}  {event.type:<7} {event.reason:<22} {target}: "
                          f"{(event.message or '').strip()}{count}"))
    return [line for _, line in sorted(lines, key=lambda item: item[0])]


def event_log(webserver: DagsterWebserver, run_id: str) -> list[str]:
    """The run's Dagster event log, one line per event: time, event type, step, message (and error)."""
    return [_event_line(event) for event in webserver.run_events(run_id)]


def _event_line(event: RunEvent) -> str:
    kind = event.event_type or event.level or event.kind
    line = f"{_clock(event.timestamp)}  {kind:<22} {event.step_key or '-':<28} {event.message}"
    return f"{line}\n    {event.error}" if event.error else line


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M:%S.%f")[:-3]
