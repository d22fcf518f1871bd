"""The Dagster webserver's API as the suite uses it: transport, queries, typed results and one client.

No report format inside: a launch is told to the ``on_launch`` listeners, steps go to ``common.record``.
"""

from __future__ import annotations

from dagster_api.client import DagsterWebserver, on_launch
from dagster_api.errors import DagsterApiError
from dagster_api.parse import compact_api_error
from dagster_api.results import (
    DEFINITIONS_REPOSITORY,
    TERMINAL_RUN_STATUSES,
    CapturedLogs,
    DaemonStatus,
    EventPage,
    LocationStatus,
    RunEvent,
    RunInfo,
    ServerInfo,
)
from dagster_api.transport import Endpoint, KubeconfigAuth, endpoint_from_api_client, proxy_session, service_proxy_base

__all__ = [
    "DEFINITIONS_REPOSITORY",
    "TERMINAL_RUN_STATUSES",
    "CapturedLogs",
    "DaemonStatus",
    "DagsterApiError",
    "DagsterWebserver",
    "Endpoint",
    "EventPage",
    "KubeconfigAuth",
    "LocationStatus",
    "RunEvent",
    "RunInfo",
    "ServerInfo",
    "compact_api_error",
    "endpoint_from_api_client",
    "on_launch",
    "proxy_session",
    "service_proxy_base",
]
