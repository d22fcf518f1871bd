"""A typed client for a Dagster webserver, reached through the Kubernetes apiserver's service proxy.

The suites talk to Dagster the way an operator's tooling would: over the webserver's GraphQL API. Going
through ``/api/v1/namespaces/<ns>/services/<svc>:<port>/proxy/`` needs no port-forward and no exposed
Service, and is authenticated with the same credentials (client certificate or bearer token) the suite
already uses for Kubernetes, so one ``kubernetes.client.ApiClient`` is all a caller passes.

dagster-graphql's ``DagsterGraphQLClient`` does what it offers (launch, status, reload, terminate); raw
queries on the same ``requests`` session cover what it lacks (tags and lineage of a run, its event log,
runs by tag, daemon health, version, workspace load status). Every failure is one ``DagsterApiError``
line naming the operation; waits go through ``observation.waits.wait_for``, which retries the transient
ones (connection refused, 503 from the proxy while a webserver pod restarts).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import allure
import requests
from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError, ReloadRepositoryLocationStatus
from gql.transport.exceptions import TransportConnectionFailed, TransportQueryError, TransportServerError
from gql.transport.requests import RequestsHTTPTransport
from kubernetes import client as k8s
from requests.auth import AuthBase

from observation.waits import Observation, TerminalState, WaitTimeout, wait_for

__all__ = [
    "DEFINITIONS_REPOSITORY",
    "TERMINAL_RUN_STATUSES",
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
    "endpoint_from_api_client",
    "proxy_session",
    "service_proxy_base",
]

DEFINITIONS_REPOSITORY = "__repository__"
"""The repository name Dagster gives the single repository of a ``Definitions`` object."""

TERMINAL_RUN_STATUSES = frozenset({DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED})
"""Statuses a run never leaves: a wait for anything else can stop once one of these is seen."""

TRANSIENT_HTTP_STATUSES = frozenset({500, 502, 503, 504})
"""What the apiserver's proxy answers while the webserver pod is missing, restarting or not ready."""

_MAX_MESSAGE = 400
_ROOT_REASON = re.compile(r"(\[Errno -?\d+\][^'\")]*|\[SSL[^\]]*\][^('\"]*|Read timed out[^'\")]*)")
T = TypeVar("T")
# Every run this process launched, in order: a test's report lists the runs launched while it ran.
LAUNCHED_RUNS: list[str] = []


# ---------------------------------------------------------------------------------------------------------------------
# Errors


class DagsterApiError(RuntimeError):
    """A webserver call failed; the message is one line naming the operation, the endpoint and the reason.

    ``transient`` is true for failures that a restarting webserver produces (no connection, 5xx from the
    proxy): waits retry every error anyway, but a caller deciding whether to retry a single call can look.
    """

    def __init__(self, operation: str, reason: str, *, transient: bool = False) -> None:
        self.operation, self.reason, self.transient = operation, _one_line(reason), transient
        super().__init__(f"Dagster GraphQL {operation} failed: {self.reason}")


def _one_line(text: str) -> str:
    """Collapse whitespace and cut the text, so an error never floods a test report with a stack trace."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= _MAX_MESSAGE else flat[: _MAX_MESSAGE - 1] + "…"


def describe_http_failure(response: requests.Response) -> str:
    """``HTTP 503: <reason>``, taking the reason from a Kubernetes ``Status`` body when the proxy sent one."""
    reason = response.text.strip().splitlines()[0] if response.text.strip() else (response.reason or "")
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("kind") == "Status" and body.get("message"):
        reason = body["message"]
    return f"HTTP {response.status_code}: {reason}"


def graphql_data(operation: str, body: Any) -> dict[str, Any]:
    """The ``data`` of a GraphQL answer, or ``DagsterApiError`` with the first error's message."""
    if not isinstance(body, dict) or ("data" not in body and "errors" not in body):
        raise DagsterApiError(operation, f"not a GraphQL answer: {str(body)[:200]}")
    errors = body.get("errors") or []
    if errors:
        first = errors[0].get("message", errors[0]) if isinstance(errors[0], dict) else errors[0]
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise DagsterApiError(operation, f"{first}{more}")
    return body.get("data") or {}


def expect_type(operation: str, node: Mapping[str, Any], *typenames: str) -> Mapping[str, Any]:
    """Unwrap a ``...OrError`` union: the node if its ``__typename`` is expected, else its error as an exception."""
    if node.get("__typename") in typenames:
        return node
    raise DagsterApiError(operation, f"{node.get('__typename')}: {node.get('message', 'no message')}")


def is_transient(exc: requests.RequestException) -> bool:
    """Refused or timed-out connections come and go with restarts; a certificate the CA rejects does not."""
    transient = isinstance(exc, requests.ConnectionError | requests.Timeout)
    return transient and not isinstance(exc, requests.exceptions.SSLError)


def describe_request_failure(exc: requests.RequestException) -> str:
    """``cannot connect: ConnectionError: [Errno 111] Connection refused``, without urllib3's retry wrapping."""
    found = _ROOT_REASON.search(str(exc))
    return f"cannot connect: {type(exc).__name__}: {found.group(1).strip() if found else exc}"


def describe_client_error(exc: BaseException) -> tuple[str, bool]:
    """Turn what ``DagsterGraphQLClient`` raised into (one-line reason, transient).

    It wraps transport failures in a multi-line message that repeats the whole query; the innermost cause
    carries the useful part (connection refused, the HTTP status and the proxy's reason, GraphQL errors).
    """
    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    if root is exc:  # an answer Dagster understood: (typename, message)
        return ": ".join(_describe_arg(arg) for arg in exc.args), False
    if isinstance(root, requests.HTTPError) and root.response is not None:
        return describe_http_failure(root.response), root.response.status_code in TRANSIENT_HTTP_STATUSES
    if isinstance(root, requests.RequestException):
        return describe_request_failure(root), is_transient(root)
    if isinstance(root, TransportQueryError):
        first = (root.errors or [{}])[0]
        return f"GraphQL error: {first.get('message', root) if isinstance(first, dict) else first}", False
    if isinstance(root, TransportServerError):
        return f"HTTP {root.code}: {root}", root.code in TRANSIENT_HTTP_STATUSES
    if isinstance(root, TransportConnectionFailed):
        return f"cannot connect: {root}", True
    return f"{type(root).__name__}: {root}", False


def _describe_arg(arg: Any) -> str:
    """DagsterGraphQLClientError carries a typename and a message, or a list of config errors with messages."""
    if isinstance(arg, list):
        return "; ".join(str(item.get("message", item)) if isinstance(item, dict) else str(item) for item in arg)
    return str(arg)


# ---------------------------------------------------------------------------------------------------------------------
# Where the webserver is and how we authenticate


@dataclass(frozen=True)
class Endpoint:
    """The webserver behind the apiserver's service proxy, and the TLS material and auth to get there."""

    base_url: str
    name: str
    verify: bool | str = True
    cert: tuple[str, str] | None = None
    auth: AuthBase | None = field(default=None, compare=False)

    @property
    def graphql_url(self) -> str:
        return f"{self.base_url}/graphql"

    @property
    def server_info_url(self) -> str:
        return f"{self.base_url}/server_info"


def service_proxy_base(host: str, namespace: str, service: str, port: int | str) -> str:
    """``<apiserver>/api/v1/namespaces/<ns>/services/<svc>:<port>/proxy``: a Service reached with no port-forward."""
    return f"{host.rstrip('/')}/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy"


class KubeconfigAuth(AuthBase):
    """Adds the kubeconfig's bearer token per request, as the Kubernetes client does.

    Asking the configuration each time keeps refreshing tokens (exec plugins, OIDC) working.
    """

    def __init__(self, configuration: k8s.Configuration) -> None:
        self.configuration = configuration

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        for setting in self.configuration.auth_settings().values():
            if setting.get("in") == "header" and setting.get("value"):
                request.headers[setting["key"]] = setting["value"]
        return request


def endpoint_from_api_client(api: k8s.ApiClient, namespace: str, service: str, port: int | str) -> Endpoint:
    """The endpoint for ``service`` as seen through the apiserver that ``api`` talks to, with the same credentials."""
    cfg = api.configuration
    if not cfg.host or not cfg.host.startswith(("https://", "http://")):
        raise ValueError(f"the Kubernetes client has no apiserver URL to proxy through (host={cfg.host!r})")
    verify: bool | str = (cfg.ssl_ca_cert or True) if cfg.verify_ssl else False
    cert = (cfg.cert_file, cfg.key_file) if cfg.cert_file and cfg.key_file else None
    return Endpoint(service_proxy_base(cfg.host, namespace, service, port), f"{namespace}/{service}:{port}",
                    verify, cert, KubeconfigAuth(cfg))


def proxy_session(endpoint: Endpoint) -> requests.Session:
    """A session that verifies the cluster CA and presents the client certificate.

    ``trust_env`` is off: with ``REQUESTS_CA_BUNDLE`` set (as on this machine) requests would otherwise replace
    ``Session.verify`` with the machine's bundle and fail against the cluster's own CA; proxies from the
    environment have no business between us and a local apiserver either.
    """
    session = requests.Session()
    session.trust_env = False
    session.verify = endpoint.verify
    session.cert = endpoint.cert
    session.auth = endpoint.auth
    return session


class SessionTransport(RequestsHTTPTransport):
    """gql's requests transport, but on our session.

    gql opens a fresh ``requests.Session`` per query, one that trusts the environment; reusing ours keeps one
    place for TLS and auth. ``verify`` and ``cert`` are also passed per request, which the environment cannot
    override either.
    """

    def __init__(self, endpoint: Endpoint, session: requests.Session, timeout: float) -> None:
        super().__init__(url=endpoint.graphql_url, verify=endpoint.verify, auth=endpoint.auth, cert=endpoint.cert,
                         timeout=math.ceil(timeout), retries=0)
        self._shared = session

    def connect(self) -> None:
        self.session = self._shared

    def close(self) -> None:
        self.session = None  # the shared session outlives one query


# ---------------------------------------------------------------------------------------------------------------------
# Typed results


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
        return f"{self.name} {self.load_status}" + (f": {_one_line(self.error)}" if self.error else "")


@dataclass(frozen=True)
class ServerInfo:
    """Versions the webserver reports at ``/server_info``."""

    webserver_version: str
    dagster_version: str
    graphql_version: str


# ---------------------------------------------------------------------------------------------------------------------
# Raw queries: what DagsterGraphQLClient lacks. Field names checked against dagster_graphql's schema by the self-tests.

RUN_FIELDS = """
fragment runFields on Run {
  runId status jobName tags { key value } parentRunId rootRunId creationTime startTime endTime
}
"""

RUN_QUERY = """
query RunInfo($runId: ID!) {
  runOrError(runId: $runId) { __typename ...runFields ... on Error { message } }
}
""" + RUN_FIELDS

RUNS_QUERY = """
query Runs($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename ... on Runs { results { ...runFields } } ... on Error { message }
  }
}
""" + RUN_FIELDS

METADATA_FIELDS = """
fragment metadataFields on MetadataEntry {
  __typename label
  ... on TextMetadataEntry { text }
  ... on IntMetadataEntry { intRepr }
  ... on FloatMetadataEntry { floatValue }
  ... on BoolMetadataEntry { boolValue }
  ... on JsonMetadataEntry { jsonString }
  ... on MarkdownMetadataEntry { mdStr }
  ... on PathMetadataEntry { path }
  ... on NotebookMetadataEntry { path }
  ... on UrlMetadataEntry { url }
  ... on PipelineRunMetadataEntry { runId }
  ... on JobMetadataEntry { jobName }
  ... on TimestampMetadataEntry { timestamp }
  ... on PoolMetadataEntry { pool }
  ... on AssetMetadataEntry { assetKey { path } }
}
"""

EVENTS_QUERY = """
query RunEvents($runId: ID!, $cursor: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: $limit) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on MessageEvent { eventType stepKey message timestamp level }
        ... on DisplayableEvent { metadataEntries { ...metadataFields } }
        ... on ErrorEvent { error { message causes { message } } }
        ... on ExecutionStepFailureEvent { failureMetadata { metadataEntries { ...metadataFields } } }
        ... on LogsCapturedEvent { fileKey stepKeys }
      }
    }
    ... on Error { message }
  }
}
""" + METADATA_FIELDS

TICKS_QUERY = """
query Ticks($schedule: ScheduleSelector!, $sensor: SensorSelector!, $isSchedule: Boolean!, $limit: Int!) {
  scheduleOrError(scheduleSelector: $schedule) @include(if: $isSchedule) {
    __typename
    ... on Schedule { scheduleState { ticks(limit: $limit) { timestamp status } } }
    ... on PythonError { message }
    ... on ScheduleNotFoundError { message }
  }
  sensorOrError(sensorSelector: $sensor) @skip(if: $isSchedule) {
    __typename
    ... on Sensor { sensorState { ticks(limit: $limit) { timestamp status } } }
    ... on PythonError { message }
    ... on SensorNotFoundError { message }
  }
}
"""

CAPTURED_LOGS_QUERY = """
query CapturedLogs($logKey: [String!]!) {
  capturedLogs(logKey: $logKey) { stdout stderr }
}
"""

DAEMON_HEALTH_QUERY = """
query DaemonHealth {
  instance {
    daemonHealth {
      allDaemonStatuses { daemonType healthy required lastHeartbeatTime lastHeartbeatErrors { message } }
    }
  }
}
"""

WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } }
    }
    ... on PythonError { message }
  }
}
"""

VERSION_QUERY = "query Version { version }"

RAW_QUERIES = (RUN_QUERY, RUNS_QUERY, EVENTS_QUERY, DAEMON_HEALTH_QUERY, WORKSPACE_QUERY, VERSION_QUERY)


# ---------------------------------------------------------------------------------------------------------------------
# Parsing: GraphQL JSON -> dataclasses. Pure, so the self-tests cover it without a webserver.


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
    return _one_line(" caused by ".join(compact_api_error(message.strip().rstrip(":"))
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
        last_heartbeat_errors=[_one_line(err.get("message", "")) for err in node.get("lastHeartbeatErrors") or []],
    )


def parse_location_entry(node: Mapping[str, Any]) -> LocationStatus:
    """A ``WorkspaceLocationEntry`` node as a LocationStatus; a load error is the PythonError's message."""
    loaded = node.get("locationOrLoadError") or {}
    error = loaded.get("message") if loaded.get("__typename") == "PythonError" else None
    return LocationStatus(node["name"], node["loadStatus"], error)


def _status_names(statuses: Iterable[DagsterRunStatus]) -> str:
    return "/".join(sorted(status.value for status in statuses))


# ---------------------------------------------------------------------------------------------------------------------
# The client


class DagsterWebserver:
    """One Dagster webserver, reached through the apiserver's service proxy.

    Single calls fail fast with ``DagsterApiError``; the ``wait_*`` methods retry through
    ``observation.waits.wait_for`` until their deadline. ``clock`` and ``sleep`` are injectable for tests.
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
        with allure.step(f"Launch {job_name} from code location {location_name}"):
            run_id = self._client_call(f"launch of {job_name} in {location_name}",
                                       lambda: self.client.submit_job_execution(
                                           job_name, repository_location_name=location_name,
                                           repository_name=repository_name, run_config=dict(run_config or {}),
                                           tags=dict(tags or {})))
        LAUNCHED_RUNS.append(run_id)
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

        with allure.step(f"Wait for run {run_id} to reach {_status_names(wanted)}"):
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
