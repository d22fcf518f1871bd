"""What each component of a local cluster is told: config files and command lines, as plain data.

Nothing here touches the machine, so self-tests can read every flag and setting.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from clusters.local.topology import CLUSTER_DOMAIN, POD_CIDR, Node, Topology

CNI_BIN_DIR = "/usr/lib/cni"


@dataclass(frozen=True)
class Component:
    """One long-running process of the cluster."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None


def kubeconfig(topology: Topology, user: str, cert: Path, key: Path) -> dict:
    pki = topology.pki_dir
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": topology.name, "cluster": {
            "server": topology.server, "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {"client-certificate": str(cert), "client-key": str(key)}}],
        "contexts": [{"name": f"dkc-{topology.name}", "context": {"cluster": topology.name, "user": user}}],
        "current-context": f"dkc-{topology.name}",
    }


def component_kubeconfigs(topology: Topology) -> dict[str, dict]:
    """Kubeconfig per component file name, each with that component's own client certificate."""
    pki = topology.pki_dir
    files = {"admin": "admin", "controller-manager": "controller-manager", "scheduler": "scheduler",
             "kube-proxy": "kube-proxy"}
    files.update({f"kubelet-{n.name}": f"kubelet-{n.name}" for n in topology.nodes})
    return {name: kubeconfig(topology, cert, pki / f"{cert}.crt", pki / f"{cert}.key") for name, cert in files.items()}


def containerd_config(topology: Topology, node: Node, sandbox_image: str) -> str:
    state, run = topology.state_dir / node.name, topology.run_dir / node.name
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    lines = [
        "version = 2",
        f'root = "{state}/containerd"',
        f'state = "{run}/containerd"',
        'disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",'
        ' "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]',
        "[grpc]",
        f'  address = "{socket_path(topology, node)}"',
        "[ttrpc]",
        f'  address = "{run}/containerd/containerd.sock.ttrpc"',
        f"[{cri}]",
        f'  sandbox_image = "{sandbox_image}"',
        # This machine withholds CAP_SYS_RESOURCE: the kubelet's -998 oom_score_adj would fail in runc.
        "  restrict_oom_score_adj = true",
        "  netns_mounts_under_state_dir = true",
        "  enable_selinux = false",
        f"[{cri}.containerd]",
        '  snapshotter = "overlayfs"',
        '  default_runtime_name = "runc"',
        f"[{cri}.containerd.runtimes.runc]",
        '  runtime_type = "io.containerd.runc.v2"',
        f"[{cri}.containerd.runtimes.runc.options]",
        "  SystemdCgroup = false",
        f"[{cri}.cni]",
        f'  bin_dir = "{CNI_BIN_DIR}"',
        f'  conf_dir = "{state}/cni"',
        '[plugins."io.containerd.internal.v1.opt"]',
        f'  path = "{state}/containerd-opt"',
    ]
    return "\n".join(lines) + "\n"


def socket_path(topology: Topology, node: Node) -> Path:
    return topology.run_dir / node.name / "containerd" / "containerd.sock"


def cni_config(topology: Topology, node: Node) -> str:
    """A bridge with no masquerade: pods talk to each other and to Services, never beyond the node."""
    return json.dumps({
        "cniVersion": "0.4.0",
        "name": "dkc",
        "plugins": [
            {
                "type": "bridge", "bridge": "cni0", "isGateway": True, "ipMasq": False, "hairpinMode": True,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": node.pod_cidr}]],
                         "routes": [{"dst": "0.0.0.0/0"}],
                         "dataDir": str(topology.state_dir / node.name / "cni-ipam")},
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }, indent=2)


def kubelet_config(topology: Topology, node: Node) -> dict:
    pki = topology.pki_dir
    state = topology.state_dir / node.name
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                           "x509": {"clientCAFile": str(pki / "ca.crt")}},
        "authorization": {"mode": "Webhook"},
        "tlsCertFile": str(pki / f"kubelet-serving-{node.name}.crt"),
        "tlsPrivateKeyFile": str(pki / f"kubelet-serving-{node.name}.key"),
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [topology.dns_service_ip],
        # The host's resolver is unreachable from the node's namespace; pods get cluster DNS only.
        "resolvConf": str(state / "resolv.conf"),
        "cgroupDriver": "cgroupfs",
        # Every pod lives under the cluster's own cgroup, so down can find and remove all of it.
        "cgroupRoot": f"/{topology.cgroup}",
        "containerRuntimeEndpoint": f"unix://{socket_path(topology, node)}",
        "failSwapOn": False,
        "podLogsDir": str(state / "pod-logs"),
        "healthzBindAddress": "127.0.0.1",
        "readOnlyPort": 0,
        "rotateCertificates": False,
        "serializeImagePulls": False,
        # A shared disk: evict only when it is really full, and never collect the images we loaded.
        "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%", "imagefs.available": "1%",
                         "nodefs.inodesFree": "1%"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "protectKernelDefaults": False,
        "maxPods": 110,
    }


def kube_proxy_config(topology: Topology, node: Node) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": node.name,
        "bindAddress": "0.0.0.0",
        "healthzBindAddress": "127.0.0.1:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "clientConnection": {"kubeconfig": str(topology.state_dir / "kube-proxy.kubeconfig")},
        # A node's namespace cannot raise the host-wide conntrack table size: leave it alone.
        "conntrack": {"maxPerCore": 0, "min": 0},
    }


def control_plane_components(topology: Topology, bins: dict[str, Path]) -> list[Component]:
    """etcd, apiserver, controller-manager and scheduler, in start order."""
    pki, state = topology.pki_dir, topology.state_dir
    node = topology.control_plane
    kc = {name: str(state / f"{name}.kubeconfig") for name in ("controller-manager", "scheduler")}
    etcd = Component("etcd", [
        str(bins["etcd"]), "--name", "default", "--data-dir", str(state / "etcd"),
        "--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
        "--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
        "--initial-cluster", "default=http://127.0.0.1:2380",
        # A throwaway test cluster: durability is not worth the disk latency.
        "--unsafe-no-fsync",
        "--log-level", "warn",
    ])
    apiserver = Component("kube-apiserver", [
        str(bins["kube-apiserver"]),
        "--etcd-servers", "http://127.0.0.1:2379",
        "--advertise-address", node.ip, "--secure-port", "6443",
        "--service-cluster-ip-range", topology.service_cidr,
        "--client-ca-file", str(pki / "ca.crt"),
        "--tls-cert-file", str(pki / "apiserver.crt"), "--tls-private-key-file", str(pki / "apiserver.key"),
        "--kubelet-client-certificate", str(pki / "apiserver-kubelet-client.crt"),
        "--kubelet-client-key", str(pki / "apiserver-kubelet-client.key"),
        "--kubelet-certificate-authority", str(pki / "ca.crt"),
        # The host's resolver is not reachable from the node's namespace: reach kubelets by IP.
        "--kubelet-preferred-address-types", "InternalIP",
        "--authorization-mode", "Node,RBAC",
        "--enable-admission-plugins", "NodeRestriction",
        "--service-account-key-file", str(pki / "sa.pub"),
        "--service-account-signing-key-file", str(pki / "sa.key"),
        "--service-account-issuer", f"https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
        "--allow-privileged=true",
        "--profiling=false",
    ])
    controller_manager = Component("kube-controller-manager", [
        str(bins["kube-controller-manager"]),
        "--kubeconfig", kc["controller-manager"],
        "--authentication-kubeconfig", kc["controller-manager"],
        "--authorization-kubeconfig", kc["controller-manager"],
        "--bind-address", "127.0.0.1",
        "--leader-elect=false",
        "--use-service-account-credentials=true",
        "--service-account-private-key-file", str(pki / "sa.key"),
        "--root-ca-file", str(pki / "ca.crt"),
        "--cluster-signing-cert-file", str(pki / "ca.crt"), "--cluster-signing-key-file", str(pki / "ca.key"),
        "--allocate-node-cidrs=true", "--cluster-cidr", POD_CIDR, "--node-cidr-mask-size", "24",
        "--service-cluster-ip-range", topology.service_cidr,
        "--controllers", "*,-cloud-node-lifecycle,-service-lb-controller,-node-route-controller",
    ])
    scheduler = Component("kube-scheduler", [
        str(bins["kube-scheduler"]),
        "--kubeconfig", kc["scheduler"],
        "--authentication-kubeconfig", kc["scheduler"],
        "--authorization-kubeconfig", kc["scheduler"],
        "--bind-address", "127.0.0.1",
        "--leader-elect=false",
    ])
    return [etcd, apiserver, controller_manager, scheduler]


def node_components(topology: Topology, node: Node, bins: dict[str, Path]) -> list[Component]:
    """containerd, kubelet and kube-proxy for one node, in start order."""
    state = topology.state_dir / node.name
    containerd = Component("containerd", ["containerd", "--config", str(state / "containerd.toml")])
    kubelet = Component("kubelet", [
        str(bins["kubelet"]),
        "--config", str(state / "kubelet.yaml"),
        "--kubeconfig", str(topology.state_dir / f"kubelet-{node.name}.kubeconfig"),
        "--root-dir", str(state / "kubelet"),
        "--hostname-override", node.name,
        "--node-ip", node.ip,
        "--node-labels", f"dkc.dagster.io/cluster={topology.name}",
    ])
    kube_proxy = Component("kube-proxy", [
        str(bins["kube-proxy"]), "--config", str(state / "kube-proxy.yaml"),
        "--hostname-override", node.name,
    ])
    return [containerd, kubelet, kube_proxy]


def to_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False)
