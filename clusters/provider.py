"""The cluster provider interface: create, delete, kubeconfig, load an image archive, status."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from clusters.errors import ClusterError

T = TypeVar("T")

PROVIDERS = ("local", "kind", "existing")
DEFAULT_CLUSTER_NAME = "dkc"
# On a cluster of more than one node, the node the suite's run pods must land on (C9): a label no node has by itself.
RUN_NODE_LABEL = "dkc.dagster.io/run-node"


@dataclass
class ClusterInfo:
    """A ready cluster, as the suite sees it."""

    provider: str
    name: str
    kubeconfig: Path
    context: str | None = None
    kubernetes_version: str = ""
    node_count: int = 1
    created_by_us: bool = False  # only then may teardown delete it
    capabilities: frozenset[str] = frozenset()  # e.g. "load-image": archives can be loaded


@dataclass
class ClusterStatus:
    exists: bool
    healthy: bool
    details: list[str] = field(default_factory=list)

    def summary(self) -> str:
        state = "healthy" if self.healthy else ("unhealthy" if self.exists else "absent")
        return "\n".join([state, *(f"  {d}" for d in self.details)])


class Provider(ABC):
    """A source of Kubernetes clusters. ``create`` is idempotent: it reuses a healthy cluster."""

    kind: str

    @abstractmethod
    def create(self) -> ClusterInfo: ...

    @abstractmethod
    def delete(self) -> None: ...

    @abstractmethod
    def kubeconfig(self) -> Path: ...

    @abstractmethod
    def load_image(self, archive: Path) -> None:
        """Make an OCI image archive's image available to every node."""

    @abstractmethod
    def status(self) -> ClusterStatus: ...

    def control_plane_pids(self, binary: str) -> list[int]:
        """The processes on this machine running the control-plane ``binary`` (e.g. kube-apiserver), for faults that
        stop them; only a provider whose control plane runs here (capability ``local-processes``) has them."""
        raise ClusterError(f"the {self.kind} provider runs no control-plane process on this machine: stopping "
                           f"{binary} needs the local provider (--cluster local)")

    def node_network_command(self, node: str, argv: list[str]) -> list[str]:
        """The argv that runs ``argv`` in the network namespace of Kubernetes node ``node`` (e.g. iptables there,
        for a partition); only a provider whose nodes are on this machine has it."""
        raise ClusterError(f"the {self.kind} provider's nodes are not on this machine: a firewall rule on node "
                           f"{node} needs the local or kind provider")

    def call_in_node_network(self, call: Callable[[], T]) -> T:
        """``call()`` from inside a node's network, where pod IPs are routed (e.g. to reach a pod while the
        apiserver, and so its proxy, is stopped); only a provider whose nodes are network namespaces here has it."""
        raise ClusterError(f"the {self.kind} provider's nodes are not network namespaces on this machine: reaching a "
                           "pod without the apiserver needs the local provider (--cluster local)")


@dataclass
class ProviderOptions:
    """What a user can choose on the command line or through pytest options."""

    name: str = DEFAULT_CLUSTER_NAME
    kubeconfig: Path | None = None
    context: str | None = None
    k8s_version: str | None = None
    node_count: int = 1
    keep: bool = False
    # kind: a node image to use instead of the one built here (e.g. kindest/node:v1.34.0, pulled by Docker).
    node_image: str | None = None
    # Testing a Dagster someone else deployed in this namespace: the suite needs access there, not cluster-wide.
    dagster_namespace: str | None = None
