"""A typed client for a Dagster webserver, reached through the Kubernetes apiserver's service proxy.

The suites talk to Dagster the way an operator's tooling would: over the webserver's GraphQL API.
dagster-graphql's ``DagsterGraphQLClient`` does what it offers (launch, status, reload, terminate); raw
queries on the same ``requests`` session cover what it lacks. Every failure is one ``DagsterApiError``
line naming the operation; waits go through ``common.waits.wait_for``, which retries the transient
ones (connection refused, 503 from the proxy while a webserver pod restarts). Launches are told to the
listeners subscribed with ``on_launch`` (the reports list the runs each test launched).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, cast

import requests
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError, ReloadRepositoryLocationStatus
from kubernetes import client as k8s

from common import record
from common.waits import Observation, TerminalState, WaitTimeout, wait_for
from dagster_api.errors import (
    TRANSIENT_HTTP_STATUSES,
    DagsterApiError,
    describe_client_error,
    describe_http_failure,
    describe_request_failure,
    expect_type,
    graphql_data,
    is_transient,
)
from dagster_api.parse import parse_daemon_status, parse_event_page, parse_location_entry, parse_run
from dagster_api.queries import (
    CAPTURED_LOGS_QUERY,
    DAEMON_HEALTH_QUERY,
    EVENTS_QUERY,
    RUN_QUERY,
    RUNS_QUERY,
    TICKS_QUERY,
    VERSION_QUERY,
    WORKSPACE_QUERY,
)
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
from dagster_api.transport import Endpoint, SessionTransport, endpoint_from_api_client, proxy_session

T = TypeVar("T")
LaunchListener = Callable[[str], None]
_launch_listeners: list[LaunchListener] = []


def on_launch(listener: LaunchListener) -> Callable[[], None]:
    """Call ``listener(run_id)`` after every launch this process makes; returns what unsubscribes it."""
    _launch_listeners.append(listener)
    return lambda: _launch_listeners.remove(listener)


def _status_names(statuses: Iterable[DagsterRunStatus]) -> str:
    return "/".join(sorted(status.value for status in statuses))



class DagsterWebserver:
    """One Dagster webserver, reached through the apiserver's service proxy.

    Single calls fail fast with ``DagsterApiError``; the ``wait_*`` methods retry through
    ``common.waits.wait_for`` until their deadline. ``clock`` and ``sleep`` are injectable for tests.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        request_timeout: float = 30.0,
        session: requests.Session | None = None,
        graphql_client: DagsterGraphQLClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        explain_run: Callable[[str], str] | None = None,
    ) -> None:
        self.endpoint = endpoint
        # Says why a run did not reach what a wait wanted (its first error, its pods' states); appended to
        # the wait's error so that a failure names its cause, not only "ended FAILURE".
        self.explain_run = explain_run
        self.request_timeout = request_timeout
        self.session = session or proxy_session(endpoint)
        self.client = graphql_client or DagsterGraphQLClient(
            endpoint.name, transport=SessionTransport(endpoint, self.session, request_timeout))
        self._clock, self._sleep = clock, sleep

    @classmethod
    def through_service_proxy(
        cls, api: k8s.ApiClient, namespace: str, service: str, port: int | str, **kwargs: Any
    ) -> DagsterWebserver:
        """The webserver Service ``service:port`` in ``namespace``, with the credentials of ``api``."""
        return cls(endpoint_from_api_client(api, namespace, service, port), **kwargs)

    # -- plumbing -------------------------------------------------------------------------------------------------

    def _operation(self, name: str) -> str:
        return f"{name} at {self.endpoint.name}"

    def _client_call(self, name: str, call: Callable[[], T]) -> T:
        """Run a DagsterGraphQLClient call, turning its multi-line errors into one DagsterApiError line."""
        try:
            return call()
        except DagsterGraphQLClientError as exc:
            reason, transient = describe_client_error(exc)
            raise DagsterApiError(self._operation(name), reason, transient=transient) from exc

    def _get(self, name: str, url: str, **kwargs: Any) -> requests.Response:
        """One request on our session; connection failures and HTTP errors become DagsterApiError."""
        try:
            response = self.session.request(url=url, timeout=self.request_timeout, **kwargs)
        except requests.RequestException as exc:
            raise DagsterApiError(self._operation(name), describe_request_failure(exc),
                                  transient=is_transient(exc)) from exc
        if response.status_code >= 400:
            raise DagsterApiError(self._operation(name), describe_http_failure(response),
                                  transient=response.status_code in TRANSIENT_HTTP_STATUSES)
        return response

    def query(self, name: str, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A raw GraphQL query; its ``data``, or DagsterApiError naming ``name``."""
        response = self._get(name, self.endpoint.graphql_url, method="POST",
                             json={"query": query, "variables": dict(variables or {})})
        try:
            body = response.json()
        except ValueError as exc:
            raise DagsterApiError(self._operation(name), f"not JSON: {response.text[:200]}") from exc
        return graphql_data(self._operation(name), body)

    # -- what DagsterGraphQLClient offers ---------------------------------------------------------------------------

    def launch_run(
        self,
        job_name: str,
        location_name: str,
        repository_name: str = DEFINITIONS_REPOSITORY,
        run_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> str:
        """Launch ``job_name`` and return its run id; naming the location and repository skips a workspace lookup."""
        with record.step(f"Launch {job_name} from code location {location_name}"):
            run_id = self._client_call(f"launch of {job_name} in {location_name}",
                                       lambda: self.client.submit_job_execution(
                                           job_name, repository_location_name=location_name,
                                           repository_name=repository_name, run_config=dict(run_config or {}),
                                           tags=dict(tags or {})))
        for listener in tuple(_launch_listeners):
            listener(run_id)
        return run_id

    def run_status(self, run_id: str) -> DagsterRunStatus:
        """The run's current status."""
        return self._client_call(f"status of run {run_id}", lambda: self.client.get_run_status(run_id))

    def reload_location(self, location_name: str) -> None:
        """Ask the webserver to reload a code location; DagsterApiError if the reload failed."""
        name = f"reload of location {location_name}"
        info = self._client_call(name, lambda: self.client.reload_repository_location(location_name))
        if info.status != ReloadRepositoryLocationStatus.SUCCESS:
            raise DagsterApiError(self._operation(name), f"{info.failure_type}: {info.message}")

    def terminate_run(self, run_id: str) -> None:
        """Ask Dagster to terminate a run (the run moves to CANCELING, then CANCELED)."""
        self._client_call(f"termination of run {run_id}", lambda: self.client.terminate_run(run_id))

    def terminate_runs(self, run_ids: Iterable[str]) -> None:
        """Terminate several runs in one mutation; DagsterApiError names those that could not be terminated."""
        ids = list(run_ids)
        self._client_call(f"termination of runs {', '.join(ids)}", lambda: self.client.terminate_runs(ids))

    # -- raw queries --------------------------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunInfo:
        """The run with its tags and its parent and root run ids."""
        name = f"RunInfo for run {run_id}"
        data = self.query(name, RUN_QUERY, {"runId": run_id})
        return parse_run(expect_type(self._operation(name), data["runOrError"], "Run"))

    def runs(
        self, tags: Mapping[str, str] | None = None, statuses: Iterable[DagsterRunStatus] = (), limit: int = 100
    ) -> list[RunInfo]:
        """Runs carrying all of ``tags`` (and in one of ``statuses``, if given), newest first, at most ``limit``."""
        run_filter: dict[str, Any] = {"tags": [{"key": key, "value": value} for key, value in (tags or {}).items()]}
        if statuses:
            run_filter["statuses"] = [DagsterRunStatus(status).value for status in statuses]
        data = self.query("Runs", RUNS_QUERY, {"filter": run_filter, "limit": limit})
        found = expect_type(self._operation("Runs"), data["runsOrError"], "Runs")
        return [parse_run(node) for node in found["results"]]

    def run_event_page(self, run_id: str, cursor: str | None = None, limit: int = 1000) -> EventPage:
        """One page of the run's event log after ``cursor``; tail a live run by passing back ``page.cursor``."""
        name = f"RunEvents for run {run_id}"
        data = self.query(name, EVENTS_QUERY, {"runId": run_id, "cursor": cursor, "limit": limit})
        return parse_event_page(expect_type(self._operation(name), data["logsForRun"], "EventConnection"))

    def run_events(self, run_id: str, page_size: int = 1000) -> list[RunEvent]:
        """The run's whole event log so far, in order."""
        events: list[RunEvent] = []
        cursor: str | None = None
        while True:
            page = self.run_event_page(run_id, cursor, page_size)
            events += page.events
            if not page.has_more or not page.events:
                return events
            cursor = page.cursor

    def captured_logs(self, run_id: str, file_key: str) -> CapturedLogs:
        """What the compute log manager captured for ``file_key`` of the run (see LOGS_CAPTURED events)."""
        name = f"CapturedLogs {file_key} of run {run_id}"
        data = self.query(name, CAPTURED_LOGS_QUERY, {"logKey": [run_id, "compute_logs", file_key]})
        logs = data["capturedLogs"]
        return CapturedLogs(stdout=logs.get("stdout") or "", stderr=logs.get("stderr") or "")

    def tick_times(self, kind: str, name: str, location: str, repository: str = DEFINITIONS_REPOSITORY,
                   limit: int = 10) -> list[tuple[float, str]]:
        """(epoch seconds, status) of the latest ticks of schedule or sensor ``name``, newest first."""
        if kind not in ("schedule", "sensor"):
            raise ValueError(f"kind must be schedule or sensor, not {kind}")
        selector = {"repositoryLocationName": location, "repositoryName": repository}
        variables = {"schedule": {**selector, "scheduleName": name}, "sensor": {**selector, "sensorName": name},
                     "isSchedule": kind == "schedule", "limit": limit}
        operation = f"Ticks of {kind} {name} in {location}"
        data = self.query(operation, TICKS_QUERY, variables)
        found = expect_type(self._operation(operation), data[f"{kind}OrError"], kind.capitalize())
        return [(float(tick["timestamp"]), tick["status"]) for tick in found[f"{kind}State"]["ticks"]]

    def daemon_statuses(self) -> list[DaemonStatus]:
        """Every daemon the instance knows, with its last heartbeat."""
        data = self.query("DaemonHealth", DAEMON_HEALTH_QUERY)
        return [parse_daemon_status(node) for node in data["instance"]["daemonHealth"]["allDaemonStatuses"]]

    def location_statuses(self) -> list[LocationStatus]:
        """Every code location in the webserver's workspace and whether it loaded."""
        data = self.query("Workspace", WORKSPACE_QUERY)
        workspace = expect_type(self._operation("Workspace"), data["workspaceOrError"], "Workspace")
        return [parse_location_entry(entry) for entry in workspace["locationEntries"]]

    def version(self) -> str:
        """The Dagster version the GraphQL schema reports; answering it proves GraphQL is served."""
        return str(self.query("Version", VERSION_QUERY)["version"])

    def server_info(self) -> ServerInfo:
        """The versions at ``/server_info`` (webserver, dagster, dagster-graphql)."""
        response = self._get("server_info", self.endpoint.server_info_url, method="GET")
        try:
            body = response.json()
        except ValueError as exc:
            raise DagsterApiError(self._operation("server_info"), f"not JSON: {response.text[:200]}") from exc
        return ServerInfo(body.get("dagster_webserver_version", ""), body.get("dagster_version", ""),
                          body.get("dagster_graphql_version", ""))

    # -- waits --------------------------------------------------------------------------------------------------------

    def wait_for_run_status(
        self, run_id: str, statuses: Iterable[DagsterRunStatus | str], timeout: float, interval: float = 1.0
    ) -> DagsterRunStatus:
        """Wait until the run is in one of ``statuses``.

        Stops early with TerminalState when the run ends in a status not wanted (a FAILURE while waiting for
        SUCCESS will not turn into SUCCESS); on timeout the error names the last status seen.
        """
        wanted = frozenset(DagsterRunStatus(status) for status in statuses)

        def look() -> Observation[DagsterRunStatus]:
            status = self.run_status(run_id)
            if status in wanted:
                return Observation(True, status.value, status)
            if status in TERMINAL_RUN_STATUSES:
                raise TerminalState(f"run {run_id} ended {status.value} while waiting for {_status_names(wanted)}"
                                    + self.cause_of(run_id))
            return Observation(False, f"run {run_id} {status.value}")

        with record.step(f"Wait for run {run_id} to reach {_status_names(wanted)}"):
            try:
                result = wait_for(f"run {run_id} to reach {_status_names(wanted)}", look, timeout, interval,
                                  self._clock, self._sleep)
            except WaitTimeout as exc:
                raise WaitTimeout(exc.description, exc.timeout, exc.last_seen + self.cause_of(run_id)) from None
        return cast(DagsterRunStatus, result)

    def cause_of(self, run_id: str) -> str:
        """``: <why>`` from the explainer, or nothing; an explainer that fails never hides the wait's own error."""
        if self.explain_run is None:
            return ""
        try:
            return f": {self.explain_run(run_id)}"
        except Exception as exc:
            return f" (cause not readable: {type(exc).__name__}: {exc})"

    def wait_for_location_loaded(
        self, name: str, timeout: float, interval: float = 2.0, reload_on_error: bool = False
    ) -> LocationStatus:
        """Wait until the workspace has loaded code location ``name`` without error.

        A load error is retried, not terminal: the code server may still be starting. With ``reload_on_error``
        the webserver is asked to reload the location each time it shows an error, for webservers that do not
        reconnect on their own.
        """

        def look() -> Observation[LocationStatus]:
            statuses = {status.name: status for status in self.location_statuses()}
            status = statuses.get(name)
            if status is None:
                return Observation(False, f"{name} not in the workspace (has: {', '.join(statuses) or 'nothing'})")
            if status.error and reload_on_error:
                return Observation(False, f"{status.describe()}; {self._try_reload(name)}")
            return Observation(status.loaded, status.describe(), status)

        return cast(LocationStatus, wait_for(f"code location {name} to load", look, timeout, interval,
                                             self._clock, self._sleep))

    def _try_reload(self, name: str) -> str:
        """Reload a location for a wait: the outcome is something seen, not a reason to stop waiting."""
        try:
            self.reload_location(name)
        except DagsterApiError as exc:
            return f"reload failed: {exc.reason}"
        return "reloaded"

    def wait_until_answering(self, timeout: float, interval: float = 1.0) -> str:
        """Wait until the webserver answers GraphQL through the proxy; returns the version it reports."""

        def look() -> Observation[str]:
            version = self.version()
            return Observation(True, f"version {version}", version)

        return cast(str, wait_for(f"the webserver {self.endpoint.name} to answer GraphQL", look, timeout, interval,
                                  self._clock, self._sleep))
