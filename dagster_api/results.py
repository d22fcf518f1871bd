"""What the webserver answers, as typed results."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagster import DagsterRunStatus

from dagster_api.errors import one_line

DEFINITIONS_REPOSITORY = "__repository__"
"""The repository name Dagster gives the single repository of a ``Definitions`` object."""

TERMINAL_RUN_STATUSES = frozenset({DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED})
"""Statuses a run never leaves: a wait for anything else can stop once one of these is seen."""


@dataclass(frozen=True)
class RunInfo:
    """A run as the webserver reports it: status, tags and lineage (retries carry parent and root run ids)."""

    run_id: str
    status: DagsterRunStatus
    job_name: str
    tags: dict[str, str]
    parent_run_id: str | None
    root_run_id: str | None
    creation_time: float | None
    start_time: float | None
    end_time: float | None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_RUN_STATUSES


@dataclass(frozen=True)
class RunEvent:
    """One entry of a run's event log; ``event_type`` is None for plain log messages."""

    kind: str
    event_type: str | None
    step_key: str | None
    message: str
    timestamp: float
    level: str | None
    metadata: dict[str, Any]
    error: str | None
    file_key: str | None = None  # LOGS_CAPTURED: where the steps' stdout/stderr went
    step_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class CapturedLogs:
    """The stdout and stderr the compute log manager captured under one log key."""

    stdout: str
    stderr: str


@dataclass(frozen=True)
class EventPage:
    """A page of a run's event log and the cursor to read on from."""

    events: list[RunEvent]
    cursor: str | None
    has_more: bool


@dataclass(frozen=True)
class DaemonStatus:
    """One daemon's heartbeat as the instance sees it."""

    daemon_type: str
    healthy: bool | None
    required: bool
    last_heartbeat_time: float | None
    last_heartbeat_errors: list[str]


@dataclass(frozen=True)
class LocationStatus:
    """Whether the webserver has loaded a code location, and why not if it failed."""

    name: str
    load_status: str
    error: str | None

    @property
    def loaded(self) -> bool:
        return self.load_status == "LOADED" and self.error is None

    def describe(self) -> str:
        return f"{self.name} {self.load_status}" + (f": {one_line(self.error)}" if self.error else "")


@dataclass(frozen=True)
class ServerInfo:
    """Versions the webserver reports at ``/server_info``."""

    webserver_version: str
    dagster_version: str
    graphql_version: str


# ---------------------------------------------------------------------------------------------------------------------
