"""The ``existing`` provider: any cluster a kubeconfig reaches. It is never created or deleted by us."""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client

from clusters.errors import ClusterError, PreflightError
from clusters.provider import ClusterInfo, ClusterStatus, Provider, ProviderOptions
from clusters.readiness import api_client, denied_access, server_version
from common.progress import phase

# (verb, group, resource) the suite needs: its own namespaces and what it deploys into them,
# the Jobs and pods Dagster launches, and deleting pods for the chaos tests.
REQUIRED_ACCESS: tuple[tuple[str, str, str], ...] = (
    ("create", "", "namespaces"), ("delete", "", "namespaces"),
    ("create", "apps", "deployments"), ("create", "", "services"), ("create", "", "configmaps"),
    ("create", "", "secrets"), ("create", "", "serviceaccounts"),
    ("create", "rbac.authorization.k8s.io", "roles"), ("create", "rbac.authorization.k8s.io", "rolebindings"),
    ("create", "batch", "jobs"), ("list", "batch", "jobs"), ("watch", "", "pods"), ("get", "", "pods/log"),
    ("delete", "", "pods"), ("list", "", "events"),
)


def default_kubeconfig() -> Path:
    first = os.environ.get("KUBECONFIG", "").split(os.pathsep)[0]
    return Path(first) if first else Path.home() / ".kube" / "config"


class ExistingProvider(Provider):
    kind = "existing"

    def __init__(self, options: ProviderOptions) -> None:
        self.options = options
        self._kubeconfig = options.kubeconfig or default_kubeconfig()

    def kubeconfig(self) -> Path:
        return self._kubeconfig

    def _api(self) -> client.ApiClient:
        return api_client(self._kubeconfig, self.options.context)

    def status(self) -> ClusterStatus:
        try:
            version = server_version(self._api())
        except Exception as exc:
            return ClusterStatus(False, False, [f"not reachable: {str(exc).splitlines()[0]}"])
        return ClusterStatus(True, True, [f"apiserver {version}", f"kubeconfig: {self._kubeconfig}"])

    def missing_access(self, api: client.ApiClient) -> list[str]:
        """The (verb resource) pairs the current identity may not do, by SelfSubjectAccessReview."""
        return denied_access(api, REQUIRED_ACCESS)

    def create(self) -> ClusterInfo:
        with phase(f"Checking the existing cluster in {self._kubeconfig}"):
            api = self._api()
            try:
                version = server_version(api)
            except Exception as exc:
                raise ClusterError(f"cluster in {self._kubeconfig} is not reachable ({str(exc).splitlines()[0]}): "
                                   "check the kubeconfig, --context and your network") from exc
            if self.options.dagster_namespace:  # the Dagster's namespace is checked once it is found
                nodes = self._nodes_if_allowed(api)
            else:
                missing = self.missing_access(api)
                if missing:
                    raise PreflightError(f"your identity lacks permissions the suite needs: {', '.join(missing)}")
                nodes = client.CoreV1Api(api).list_node(_request_timeout=10).items
        return ClusterInfo(provider=self.kind, name=self.options.context or "current-context",
                           kubeconfig=self._kubeconfig, context=self.options.context, kubernetes_version=version,
                           node_count=len(nodes), created_by_us=False)

    @staticmethod
    def _nodes_if_allowed(api: client.ApiClient) -> list[client.V1Node]:
        """The nodes, for the report; an identity limited to one namespace may not list them (count 0)."""
        try:
            return client.CoreV1Api(api).list_node(_request_timeout=10).items
        except client.ApiException as exc:
            if exc.status == 403:
                return []
            raise

    def delete(self) -> None:
        """Someone else's cluster: nothing to delete."""

    def load_image(self, archive: Path) -> None:
        raise ClusterError(f"the existing provider cannot load {archive.name}: push the image to a registry "
                           "your cluster pulls from")
