"""A cluster is ready for the suite when its nodes are Ready, DNS answers and pods can get tokens."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from kubernetes import client, config
from kubernetes.client.rest import ApiException

from clusters.errors import ClusterError
from common.progress import phase
from common.waits import Observation, wait_for
from observation.kube import deployment_available


def api_client(kubeconfig: Path, context: str | None = None) -> client.ApiClient:
    """A client for one kubeconfig; never touches the process-wide default configuration."""
    if not kubeconfig.exists():
        raise ClusterError(f"kubeconfig {kubeconfig} does not exist: pass --kubeconfig with a valid path")
    try:
        return config.new_client_from_config(config_file=str(kubeconfig), context=context)
    except (config.ConfigException, ValueError) as exc:
        raise ClusterError(f"kubeconfig {kubeconfig} is unusable ({exc}); check the file and --context") from exc


def server_version(api: client.ApiClient) -> str:
    return client.VersionApi(api).get_code(_request_timeout=10).git_version


def _nodes_ready(api: client.ApiClient, expected: int) -> Observation[None]:
    nodes = client.CoreV1Api(api).list_node(_request_timeout=10).items
    states = {}
    for node in nodes:
        ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
        states[node.metadata.name] = f"{ready.status} ({ready.reason})" if ready else "no Ready condition"
    done = len(nodes) >= expected and all(s.startswith("True") for s in states.values())
    return Observation(done, f"{len(nodes)}/{expected} nodes: {states}" if states else "no node registered")


def _service_account(api: client.ApiClient, namespace: str, name: str) -> Observation[None]:
    try:
        client.CoreV1Api(api).read_namespaced_service_account(name, namespace, _request_timeout=10)
    except ApiException as exc:
        if exc.status == 404:
            return Observation(False, f"ServiceAccount {namespace}/{name} not created yet")
        raise
    return Observation(True, "present")


def wait_ready(api: client.ApiClient, node_count: int, timeout: float = 180.0) -> None:
    """Block until nodes are Ready, CoreDNS is available and the default ServiceAccount exists."""
    with phase("Waiting for nodes to be Ready"):
        wait_for("every node to be Ready", lambda: _nodes_ready(api, node_count), timeout)
    with phase("Waiting for CoreDNS"):
        wait_for("CoreDNS to be available", lambda: deployment_available(api, "kube-system", "k8s-app=kube-dns"),
                 timeout)
    with phase("Waiting for the default ServiceAccount"):
        wait_for("ServiceAccount default/default", lambda: _service_account(api, "default", "default"), timeout)


def denied_access(api: client.ApiClient, checks: Iterable[tuple[str, str, str]], namespace: str | None = None,
                  timeout: float = 10) -> list[str]:
    """The (verb, group, resource) checks the current identity may not do, by SelfSubjectAccessReview, as
    ``"delete pods"`` / ``"list jobs.batch"`` (``... in <namespace>`` when asked about one namespace)."""
    authz = client.AuthorizationV1Api(api)
    where = f" in {namespace}" if namespace else ""
    denied = []
    for verb, group, resource in checks:
        name, _, subresource = resource.partition("/")
        review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
            resource_attributes=client.V1ResourceAttributes(namespace=namespace, verb=verb, group=group,
                                                            resource=name, subresource=subresource or None)))
        if not authz.create_self_subject_access_review(review, _request_timeout=timeout).status.allowed:
            denied.append(f"{verb} {resource}" + (f".{group}" if group else "") + where)
    return denied
