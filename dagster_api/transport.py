"""Where a webserver is and how the suite reaches it: the apiserver's service proxy, with the kubeconfig's credentials.

Going through ``/api/v1/namespaces/<ns>/services/<svc>:<port>/proxy/`` needs no port-forward and no exposed Service,
and is authenticated with the same credentials (client certificate or bearer token) the suite already uses for
Kubernetes, so one ``kubernetes.client.ApiClient`` is all a caller passes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import requests
from gql.transport.requests import RequestsHTTPTransport
from kubernetes import client as k8s
from requests.auth import AuthBase


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
