"""Where a local cluster lives: names, addresses and directories, all derived from its name.

Everything the provider makes is named after the cluster (network namespace ``dkc-<name>``,
cgroup ``/dkc-<name>``, state under ``<state root>/<name>``), so ``down`` and a stale-state sweep
find it again from the name alone.
"""

from __future__ import annotations

import ipaddress
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

STATE_ROOT = Path(os.environ.get("DKC_STATE_DIR", "/var/lib/dagster-k8s-conformance"))
RUN_ROOT = Path("/run/dagster-k8s-conformance")
# The veth link between the host and a node's namespace takes a /30 out of this range.
LINK_RANGE = ipaddress.ip_network("10.213.0.0/16")
POD_CIDR = "10.244.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
CLUSTER_DOMAIN = "cluster.local"
APISERVER_PORT = 6443
_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


def validate_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise ValueError(
            f"cluster name {name!r} is invalid: use 1-20 lowercase letters, digits or '-', starting with a letter"
        )


def _slot(name: str) -> int:
    """A stable per-name /30 index, so two clusters can run side by side."""
    return zlib.crc32(name.encode()) % (LINK_RANGE.num_addresses // 4 - 2) + 1


@dataclass(frozen=True)
class Node:
    name: str
    index: int
    host_ip: str  # host side of the veth
    ip: str  # the node's address inside its namespace
    pod_cidr: str
    veth_host: str
    netns: str


@dataclass(frozen=True)
class Topology:
    name: str
    node_count: int = 1

    def __post_init__(self) -> None:
        validate_name(self.name)
        if self.node_count < 1:
            raise ValueError("node count must be at least 1")

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.name

    @property
    def run_dir(self) -> Path:
        return RUN_ROOT / self.name

    @property
    def mount_ns_file(self) -> Path:
        return self.run_dir / "mnt"

    @property
    def cgroup(self) -> str:
        return f"dkc-{self.name}"

    @property
    def pki_dir(self) -> Path:
        return self.state_dir / "pki"

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd" / "containerd.sock"

    @property
    def service_cidr(self) -> str:
        return SERVICE_CIDR

    @property
    def api_service_ip(self) -> str:
        return str(ipaddress.ip_network(SERVICE_CIDR)[1])

    @property
    def dns_service_ip(self) -> str:
        return str(ipaddress.ip_network(SERVICE_CIDR)[10])

    @property
    def nodes(self) -> list[Node]:
        slot = _slot(self.name)
        link = list(LINK_RANGE.subnets(new_prefix=30))[slot]
        pods = list(ipaddress.ip_network(POD_CIDR).subnets(new_prefix=24))
        nodes = []
        for index in range(self.node_count):
            suffix = "control-plane" if index == 0 else f"worker{index}"
            nodes.append(Node(
                name=f"{self.name}-{suffix}", index=index,
                host_ip=str(link[1]), ip=str(link[2]), pod_cidr=str(pods[index]),
                veth_host=f"dkc{slot}h{index}", netns=f"dkc-{self.name}" + (f"-{index}" if index else ""),
            ))
        return nodes

    @property
    def control_plane(self) -> Node:
        return self.nodes[0]

    @property
    def server(self) -> str:
        return f"https://{self.control_plane.ip}:{APISERVER_PORT}"
