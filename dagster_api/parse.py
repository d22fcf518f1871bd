"""GraphQL JSON -> typed results. Pure, so the self-tests cover it without a webserver."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dagster import DagsterRunStatus

from dagster_api.errors import one_line
from dagster_api.results import DaemonStatus, EventPage, LocationStatus, RunEvent, RunInfo


def parse_run(node: Mapping[str, Any]) -> RunInfo:
    """A ``Run`` node (``runFields``) as a RunInfo."""
    return RunInfo(
        run_id=node["runId"],
        status=DagsterRunStatus(node["status"]),
        job_name=node["jobName"],
        tags={tag["key"]: tag["value"] for tag in node.get("tags") or []},
        parent_run_id=node.get("parentRunId"),
        root_run_id=node.get("rootRunId"),
        creation_time=node.get("creationTime"),
        start_time=node.get("startTime"),
        end_time=node.get("endTime"),
    )


def metadata_value(entry: Mapping[str, Any]) -> Any:
    """The value of a metadata entry, whatever its kind; None for kinds with no simple value (tables, …)."""
    if "intRepr" in entry:
        return int(entry["intRepr"])
    if "jsonString" in entry:
        return json.loads(entry["jsonString"])
    if "assetKey" in entry:
        return "/".join(entry["assetKey"]["path"])
    for key in ("text", "floatValue", "boolValue", "mdStr", "path", "url", "runId", "jobName", "timestamp", "pool"):
        if key in entry:
            return entry[key]
    return None


def parse_metadata(entries: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Metadata entries as ``label -> value``."""
    return {entry["label"]: metadata_value(entry) for entry in entries}


def python_error_text(error: Mapping[str, Any] | None) -> str | None:
    """A PythonError and its causes on one line: the step error wraps the exception the op raised."""
    if not error:
        return None
    messages = [error.get("message", "")] + [cause.get("message", "") for cause in error.get("causes") or []]
    return one_line(" caused by ".join(compact_api_error(message.strip().rstrip(":"))
                                        for message in messages if message.strip()))


_HEADERS = re.compile(r"\s*HTTP response headers: HTTPHeaderDict\(\{.*?\}\)", re.DOTALL)
_BODY = re.compile(r"HTTP response body: (\{.*\})", re.DOTALL)


def compact_api_error(text: str) -> str:
    """A Kubernetes ApiException as its reason and the Status message (``jobs.batch is forbidden: User ... cannot
    create resource "jobs"``), without the response headers that would push the cause out of the line."""
    text = _HEADERS.sub("", text)
    body = _BODY.search(text)
    if body:
        try:
            message = json.loads(body.group(1)).get("message")
        except ValueError:
            message = None
        if message:
            text = text[:body.start()] + message + text[body.end():]
    return text


def parse_event(node: Mapping[str, Any]) -> RunEvent:
    """A ``DagsterRunEvent`` node as a RunEvent; timestamps arrive as milliseconds in a string."""
    entries = list(node.get("metadataEntries") or [])
    entries += (node.get("failureMetadata") or {}).get("metadataEntries") or []
    return RunEvent(
        kind=node["__typename"],
        event_type=node.get("eventType"),
        step_key=node.get("stepKey"),
        message=node.get("message") or "",
        timestamp=float(node["timestamp"]) / 1000.0 if node.get("timestamp") else 0.0,
        level=node.get("level"),
        metadata=parse_metadata(entries),
        error=python_error_text(node.get("error")),
        file_key=node.get("fileKey"),
        step_keys=tuple(node.get("stepKeys") or ()),
    )


def parse_event_page(node: Mapping[str, Any]) -> EventPage:
    """An ``EventConnection`` node as an EventPage."""
    return EventPage([parse_event(event) for event in node["events"]], node.get("cursor"), bool(node.get("hasMore")))


def parse_daemon_status(node: Mapping[str, Any]) -> DaemonStatus:
    """A ``DaemonStatus`` node as a DaemonStatus."""
    return DaemonStatus(
        daemon_type=node["daemonType"],
        healthy=node.get("healthy"),
        required=bool(node.get("required")),
        last_heartbeat_time=node.get("lastHeartbeatTime"),
        last_heartbeat_errors=[one_line(err.get("message", "")) for err in node.get("lastHeartbeatErrors") or []],
    )


def parse_location_entry(node: Mapping[str, Any]) -> LocationStatus:
    """A ``WorkspaceLocationEntry`` node as a LocationStatus; a load error is the PythonError's message."""
    loaded = node.get("locationOrLoadError") or {}
    error = loaded.get("message") if loaded.get("__typename") == "PythonError" else None
    return LocationStatus(node["name"], node["loadStatus"], error)
