"""Self-tests for dagster_api: URLs, TLS and auth, parsing, one-line errors, and waits — no network.

A fake requests adapter stands in for the apiserver's service proxy, so both paths (DagsterGraphQLClient over
gql, and raw queries) run end to end on the real session; the samples are shapes a Dagster 1.13 webserver
returned for a real run.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from dagster import DagsterRunStatus
from kubernetes import client as k8s

import dagster_api as g
from common.waits import TerminalState, WaitTimeout
from tests.dagster_answers import FAILURE_EVENT, LOG_EVENT, RUN_NODE
from tests.fakes import FakeClock

CA, CERT, KEY = "/pki/ca.crt", "/pki/admin.crt", "/pki/admin.key"

PROXY = "https://10.0.0.1:6443/api/v1/namespaces/dkc/services/dagster-dagster-webserver:80/proxy"

Handler = Callable[[str, dict[str, Any]], Any]

# dagster-graphql's own client calls gql with arguments gql 4 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:Using variable_values and operation_name:DeprecationWarning")



class FakeProxy(requests.adapters.BaseAdapter):
    """The apiserver's service proxy: answers each request with what ``handler(url, body)`` returns.

    The handler returns ``(status, json)`` or a JSON body (status 200), or raises (e.g. connection refused).
    Every request is kept with the TLS settings it was sent with.
    """

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.sent: list[tuple[requests.PreparedRequest, dict[str, Any]]] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append((request, kwargs))
        body = json.loads(request.body) if request.body else {}
        answer = self.handler(request.url or "", body)
        status, payload = answer if isinstance(answer, tuple) else (200, answer)
        response = requests.Response()
        response.status_code, response.reason, response.url, response.request = status, "Reason", request.url, request
        response._content = json.dumps(payload).encode()
        response.headers["Content-Type"] = "application/json"
        return response

    def close(self) -> None:
        pass

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.body) for request, _ in self.sent if request.body]


def answers(*replies: Any) -> Handler:
    """A handler giving ``replies`` in order (an exception instance is raised), the last one forever."""
    queue: Iterator[Any] = iter(replies)
    last: list[Any] = []

    def handler(url: str, body: dict[str, Any]) -> Any:
        reply = next(queue, None)
        if reply is None:
            reply = last[0]
        last[:] = [reply]
        if isinstance(reply, Exception):
            raise reply
        return reply

    return handler


def configuration(**overrides: Any) -> k8s.Configuration:
    cfg = k8s.Configuration()
    cfg.host, cfg.ssl_ca_cert, cfg.cert_file, cfg.key_file = "https://10.0.0.1:6443/", CA, CERT, KEY
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def webserver(handler: Handler, clock: FakeClock | None = None, **cfg: Any) -> tuple[g.DagsterWebserver, FakeProxy]:
    clock = clock or FakeClock()
    server = g.DagsterWebserver.through_service_proxy(
        k8s.ApiClient(configuration(**cfg)), "dkc", "dagster-dagster-webserver", 80, clock=clock, sleep=clock.sleep)
    proxy = FakeProxy(handler)
    server.session.mount("https://", proxy)
    return server, proxy


def status_answer(status: str) -> dict[str, Any]:
    return {"data": {"pipelineRunOrError": {"__typename": "Run", "status": status}}}


NO_ENDPOINTS = (503, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 503,
                      "reason": "ServiceUnavailable", "message": 'no endpoints available for service "dagster-web"'})
REFUSED = requests.ConnectionError(
    "HTTPSConnectionPool(host='10.0.0.1', port=6443): Max retries exceeded with url: /api (Caused by "
    "NewConnectionError(\"HTTPSConnection(host='10.0.0.1', port=6443): Failed to establish a new connection: "
    "[Errno 111] Connection refused\"))")

# -- where the webserver is ------------------------------------------------------------------------------------------


def test_proxy_url_and_tls_come_from_the_kubernetes_client() -> None:
    endpoint = g.endpoint_from_api_client(k8s.ApiClient(configuration()), "dkc", "dagster-dagster-webserver", 80)
    assert endpoint.graphql_url == f"{PROXY}/graphql", "GraphQL is reached through the apiserver's service proxy"
    assert endpoint.server_info_url == f"{PROXY}/server_info"
    assert (endpoint.verify, endpoint.cert) == (CA, (CERT, KEY)), "the cluster CA and the client certificate are used"
    assert endpoint.name == "dkc/dagster-dagster-webserver:80"


def test_unverified_clusters_and_certificate_less_kubeconfigs_are_followed() -> None:
    endpoint = g.endpoint_from_api_client(
        k8s.ApiClient(configuration(verify_ssl=False, cert_file=None)), "ns", "svc", "http")
    assert endpoint.verify is False and endpoint.cert is None
    assert endpoint.graphql_url.endswith("/services/svc:http/proxy/graphql"), "a named port is accepted"


def test_a_client_without_an_apiserver_url_is_refused() -> None:
    with pytest.raises(ValueError, match="no apiserver URL"):
        g.endpoint_from_api_client(k8s.ApiClient(configuration(host="")), "ns", "svc", 80)


@pytest.mark.parametrize("api_key, prefix", [({"BearerToken": "tok"}, {"BearerToken": "Bearer"}),
                                             ({"authorization": "Bearer tok"}, {})])
def test_a_bearer_token_in_the_kubeconfig_is_sent(api_key: dict[str, str], prefix: dict[str, str]) -> None:
    server, proxy = webserver(answers({"data": {"version": "1.13.27"}}), api_key=api_key, api_key_prefix=prefix)
    server.version()
    assert proxy.sent[0][0].headers.get("authorization") == "Bearer tok", "the token reaches the apiserver"


def test_no_token_means_no_authorization_header() -> None:
    server, proxy = webserver(answers({"data": {"version": "1.13.27"}}))
    server.version()
    assert "authorization" not in proxy.sent[0][0].headers


def test_requests_ca_bundle_does_not_replace_the_cluster_ca(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    server, proxy = webserver(answers({"data": {"version": "1.13.27"}}, status_answer("STARTED")))
    server.version()
    server.run_status("r1")
    for request, settings in proxy.sent:
        assert settings["verify"] == CA, f"{request.body!r} was verified against {settings['verify']}, not the CA"
        assert settings["cert"] == (CERT, KEY), "the client certificate is presented"
    assert [request.url for request, _ in proxy.sent] == [f"{PROXY}/graphql"] * 2, "both paths use the proxy URL"


# -- calls through the fake proxy ------------------------------------------------------------------------------------


def test_the_event_log_is_read_page_by_page() -> None:
    server, proxy = webserver(answers(
        {"data": {"logsForRun": {"__typename": "EventConnection", "cursor": "c1", "hasMore": True,
                                 "events": [LOG_EVENT]}}},
        {"data": {"logsForRun": {"__typename": "EventConnection", "cursor": "c2", "hasMore": False,
                                 "events": [FAILURE_EVENT]}}}))
    events = server.run_events("b2", page_size=1)
    assert [event.event_type for event in events] == [None, "STEP_FAILURE"]
    assert [body["variables"]["cursor"] for body in proxy.bodies] == [None, "c1"], "each page starts at the cursor"


def test_runs_are_listed_by_tag() -> None:
    server, proxy = webserver(answers({"data": {"runsOrError": {"__typename": "Runs", "results": [RUN_NODE]}}}))
    runs = server.runs({"suite": "c07"}, statuses=[DagsterRunStatus.FAILURE], limit=5)
    assert [run.run_id for run in runs] == ["b2"]
    assert proxy.bodies[0]["variables"] == {
        "filter": {"tags": [{"key": "suite", "value": "c07"}], "statuses": ["FAILURE"]}, "limit": 5}


def test_launch_names_location_repository_config_and_tags() -> None:
    server, proxy = webserver(answers(
        {"data": {"launchPipelineExecution": {"__typename": "LaunchRunSuccess", "run": {"runId": "r1"}}}}))
    run_id = server.launch_run("demo", "workloads", run_config={"ops": {}}, tags={"suite": "c07"})
    params = proxy.bodies[0]["variables"]["executionParams"]
    assert run_id == "r1"
    assert params["selector"]["repositoryLocationName"] == "workloads"
    assert params["selector"]["repositoryName"] == "__repository__", "a Definitions object's repository"
    assert (params["selector"]["pipelineName"], params["runConfigData"]) == ("demo", {"ops": {}})
    assert {"key": "suite", "value": "c07"} in params["executionMetadata"]["tags"]


def test_every_launch_is_told_to_the_subscribed_listeners_until_they_unsubscribe() -> None:
    server, _ = webserver(answers(
        {"data": {"launchPipelineExecution": {"__typename": "LaunchRunSuccess", "run": {"runId": "r1"}}}},
        {"data": {"launchPipelineExecution": {"__typename": "LaunchRunSuccess", "run": {"runId": "r2"}}}}))
    told: list[str] = []
    unsubscribe = g.on_launch(told.append)
    server.launch_run("demo", "workloads")
    unsubscribe()
    server.launch_run("demo", "workloads")
    assert told == ["r1"]


# -- errors ----------------------------------------------------------------------------------------------------------


def test_graphql_errors_become_one_line_naming_the_query() -> None:
    server, _ = webserver(answers({"errors": [{"message": 'Cannot query field "x"\non type "Run".'},
                                              {"message": "second"}]}))
    with pytest.raises(g.DagsterApiError) as caught:
        server.run("b2")
    message = str(caught.value)
    assert "\n" not in message
    assert message == ('Dagster GraphQL RunInfo for run b2 at dkc/dagster-dagster-webserver:80 failed: '
                       'Cannot query field "x" on type "Run". (and 1 more)')
    assert not caught.value.transient


def test_an_error_typename_becomes_one_line() -> None:
    server, _ = webserver(answers({"data": {"runOrError": {"__typename": "RunNotFoundError",
                                                           "message": "Run nope could not be found."}}}))
    with pytest.raises(g.DagsterApiError, match=r"RunInfo for run nope .* failed: RunNotFoundError: Run nope could"):
        server.run("nope")


def test_client_errors_become_one_line_too() -> None:
    server, _ = webserver(answers({"data": {"pipelineRunOrError": {"__typename": "RunNotFoundError",
                                                                   "message": "Run nope could not be found."}}}))
    with pytest.raises(g.DagsterApiError) as caught:
        server.run_status("nope")
    assert str(caught.value).endswith("status of run nope at dkc/dagster-dagster-webserver:80 failed: "
                                      "RunNotFoundError: Run nope could not be found.")


@pytest.mark.parametrize("call", ["version", "run_status"])
def test_a_restarting_webserver_fails_fast_and_transient(call: str) -> None:
    for reply, reason in [(NO_ENDPOINTS, 'HTTP 503: no endpoints available for service "dagster-web"'),
                          (REFUSED, "cannot connect: ConnectionError: [Errno 111] Connection refused")]:
        server, proxy = webserver(answers(reply))
        with pytest.raises(g.DagsterApiError) as caught:
            getattr(server, call)(*(["r1"] if call == "run_status" else []))
        assert caught.value.transient and caught.value.reason == reason, str(caught.value)
        assert "\n" not in str(caught.value) and len(proxy.sent) == 1, "one attempt, no hidden retries"


def test_a_rejected_certificate_is_not_transient() -> None:
    server, _ = webserver(answers(requests.exceptions.SSLError(
        "Max retries exceeded (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] "
        "certificate verify failed: self-signed certificate in certificate chain (_ssl.c:1006)')))")))
    with pytest.raises(g.DagsterApiError, match=r"CERTIFICATE_VERIFY_FAILED\] certificate verify failed") as caught:
        server.version()
    assert not caught.value.transient


# -- waits -----------------------------------------------------------------------------------------------------------


def test_the_run_wait_returns_the_wanted_status_through_a_restart() -> None:
    clock = FakeClock()
    server, _ = webserver(answers(status_answer("STARTING"), NO_ENDPOINTS, REFUSED, status_answer("SUCCESS")), clock)
    assert server.wait_for_run_status("r1", ["SUCCESS"], timeout=60) is DagsterRunStatus.SUCCESS
    assert clock.now == pytest.approx(3), "transient errors were retried at the interval"


def test_the_run_wait_stops_early_on_an_unwanted_end() -> None:
    clock = FakeClock()
    server, proxy = webserver(answers(status_answer("STARTED"), status_answer("FAILURE")), clock)
    with pytest.raises(TerminalState, match="run r1 ended FAILURE while waiting for SUCCESS"):
        server.wait_for_run_status("r1", [DagsterRunStatus.SUCCESS], timeout=600)
    assert clock.now == pytest.approx(1) and len(proxy.sent) == 2, "no waiting after the run ended"


def test_a_wanted_end_state_is_not_terminal() -> None:
    server, _ = webserver(answers(status_answer("CANCELED")))
    assert server.wait_for_run_status("r1", ["CANCELING", "CANCELED"], timeout=5) is DagsterRunStatus.CANCELED


def test_the_run_wait_timeout_names_the_last_status() -> None:
    clock = FakeClock()
    server, _ = webserver(answers(status_answer("QUEUED"), status_answer("STARTED")), clock)
    with pytest.raises(WaitTimeout, match=r"waiting for run r1 to reach SUCCESS; last seen: run r1 STARTED"):
        server.wait_for_run_status("r1", ["SUCCESS"], timeout=10)
    assert clock.now == pytest.approx(10)


def workspace(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"workspaceOrError": {"__typename": "Workspace", "locationEntries": list(entries)}}}


def test_the_location_wait_retries_load_errors_until_loaded() -> None:
    clock = FakeClock()
    error = {"__typename": "PythonError", "message": "DagsterUserCodeUnreachableError: UNAVAILABLE"}
    server, _ = webserver(answers(
        workspace(),
        workspace({"name": "workloads", "loadStatus": "LOADED", "locationOrLoadError": error}),
        workspace({"name": "workloads", "loadStatus": "LOADED",
                   "locationOrLoadError": {"__typename": "RepositoryLocation"}})), clock)
    status = server.wait_for_location_loaded("workloads", timeout=60)
    assert status.loaded and clock.now == pytest.approx(4)


def test_the_location_wait_timeout_names_the_load_error() -> None:
    error = {"__typename": "PythonError", "message": "DagsterUserCodeUnreachableError:\nUNAVAILABLE"}
    server, _ = webserver(answers(workspace({"name": "workloads", "loadStatus": "LOADED",
                                             "locationOrLoadError": error})))
    with pytest.raises(WaitTimeout, match="last seen: workloads LOADED: DagsterUserCodeUnreachableError: UNAVAILABLE"):
        server.wait_for_location_loaded("workloads", timeout=6)


def test_the_location_wait_can_ask_for_a_reload() -> None:
    error = {"__typename": "PythonError", "message": "UNAVAILABLE"}
    reloaded = {"data": {"reloadRepositoryLocation": {"__typename": "WorkspaceLocationEntry",
                                                      "locationOrLoadError": {"__typename": "RepositoryLocation"}}}}
    server, proxy = webserver(answers(
        workspace({"name": "workloads", "loadStatus": "LOADED", "locationOrLoadError": error}), reloaded,
        workspace({"name": "workloads", "loadStatus": "LOADED",
                   "locationOrLoadError": {"__typename": "RepositoryLocation"}})))
    assert server.wait_for_location_loaded("workloads", timeout=60, reload_on_error=True).loaded
    assert proxy.bodies[1]["variables"] == {"repositoryLocationName": "workloads"}, "the reload named the location"


def test_waiting_until_the_webserver_answers() -> None:
    clock = FakeClock()
    server, _ = webserver(answers(REFUSED, NO_ENDPOINTS, {"data": {"version": "1.13.27"}}), clock)
    assert server.wait_until_answering(timeout=30) == "1.13.27"
    assert clock.now == pytest.approx(2)
