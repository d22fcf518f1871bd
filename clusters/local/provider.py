"""Bring a local cluster up as ordered steps; any failure (or Ctrl-C) removes what was made."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from kubernetes import client

from clusters import manifests
from clusters.errors import ClusterError, PreflightError
from clusters.local import build, config, host, pki
from clusters.local.topology import Node, Topology
from clusters.provider import ClusterInfo, ClusterStatus, Provider, ProviderOptions
from clusters.readiness import api_client, server_version, wait_ready
from common.progress import phase, say
from common.waits import Observation, TerminalState, WaitTimeout, wait_for
from images import oci

T = TypeVar("T")
MARKER = "cluster.json"  # in the state dir: this cluster was made by us, with these settings


class LocalProvider(Provider):
    kind = "local"

    def __init__(self, options: ProviderOptions) -> None:
        self.options = options
        self.version = options.k8s_version or build.DEFAULT_K8S_VERSION
        self._children: dict[str, int] = {}
        build.validate_version(self.version)
        try:
            self.topology = Topology(options.name, options.node_count)
        except ValueError as exc:
            raise PreflightError(str(exc)) from exc

    # -- interface -----------------------------------------------------------------------------

    def kubeconfig(self) -> Path:
        return self.topology.kubeconfig

    def info(self) -> ClusterInfo:
        return ClusterInfo(provider=self.kind, name=self.topology.name, kubeconfig=self.kubeconfig(),
                           context=f"dkc-{self.topology.name}", kubernetes_version=self.version,
                           node_count=self.topology.node_count, created_by_us=True,
                           capabilities=frozenset({"load-image", "local-processes"}))

    def status(self) -> ClusterStatus:
        left = host.leftovers(self.topology)
        marker = self.topology.state_dir / MARKER
        if not left:
            return ClusterStatus(exists=False, healthy=False)
        details = []
        if marker.exists():
            recorded = json.loads(marker.read_text())
            details.append(f"Kubernetes {recorded.get('kubernetes_version')}, {recorded.get('node_count')} node(s)")
            if recorded.get("kubernetes_version") != self.version:
                details.append(f"asked for {self.version}: the cluster must be recreated")
                return ClusterStatus(exists=True, healthy=False, details=details)
        down = [c.name for c in self._components() if not host.component_running(self.topology, c)]
        if down:
            return ClusterStatus(True, False, [*details, f"not running: {', '.join(down)}"])
        try:
            api = api_client(self.kubeconfig())
            details.append(f"apiserver {server_version(api)} at {self.topology.server}")
            nodes = client.CoreV1Api(api).list_node(_request_timeout=5).items
        except Exception as exc:
            return ClusterStatus(True, False, [*details, f"apiserver not answering: {exc}"])
        ready = [n.metadata.name for n in nodes
                 if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]
        details.append(f"nodes Ready: {len(ready)}/{self.topology.node_count}")
        details.append(f"kubeconfig: {self.kubeconfig()}")
        return ClusterStatus(True, len(ready) == self.topology.node_count, details)

    def create(self) -> ClusterInfo:
        host.preflight()
        if self.topology.node_count > 1:
            raise PreflightError("the local provider runs a single node for now: use --nodes 1, or --cluster kind")
        current = self.status()
        if current.healthy:
            say(f"✓ Reusing healthy local cluster {self.topology.name} ({self.kubeconfig()})")
            return self.info()
        self._refuse_foreign_namespace()
        if current.exists:
            with phase(f"Removing stale state of local cluster {self.topology.name}"):
                host.sweep(self.topology)
        bins = self._binaries()
        archives = self._base_images(bins)
        try:
            try:
                self._bring_up(bins, archives)
            except (TerminalState, WaitTimeout) as exc:
                raise ClusterError(f"local cluster {self.topology.name} did not come up: {exc} "
                                   f"(component logs: {self.topology.state_dir / 'logs'}; keep them with --keep)"
                                   ) from exc
        except BaseException:
            if self.options.keep:
                say("  --keep: leaving the half-made cluster in place; remove it with "
                    f"`dkc down --name {self.topology.name}`")
            else:
                with phase("Removing the half-made cluster"):
                    host.sweep(self.topology)
            raise
        say(f"✓ Local cluster {self.topology.name} is ready: export KUBECONFIG={self.kubeconfig()}")
        return self.info()

    def delete(self) -> None:
        with phase(f"Deleting local cluster {self.topology.name}"):
            host.sweep(self.topology)
            left = host.leftovers(self.topology)
            if left:
                raise ClusterError(f"could not remove: {'; '.join(left[:5])}")

    def control_plane_pids(self, binary: str) -> list[int]:
        return sorted(host.component_pids(self.topology, binary))

    def node_network_command(self, node: str, argv: list[str]) -> list[str]:
        ours = [n for n in self.topology.nodes if n.name == node]
        if not ours:
            raise ClusterError(f"node {node} is not a node of the local cluster {self.topology.name} "
                               f"({', '.join(n.name for n in self.topology.nodes)})")
        return host.in_netns(ours[0], argv)

    def call_in_node_network(self, call: Callable[[], T]) -> T:
        return host.call_in_netns(self.topology.nodes[0], call)

    def load_image(self, archive: Path) -> None:
        for node in self.topology.nodes:
            socket = config.socket_path(self.topology, node)
            proc = subprocess.run(["ctr", "--address", str(socket), "-n", "k8s.io", "images", "import", str(archive)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise ClusterError(f"importing {archive.name} into node {node.name} failed: {proc.stderr.strip()}")

    # -- steps ---------------------------------------------------------------------------------

    def _refuse_foreign_namespace(self) -> None:
        """A namespace or interface with our name that we did not make is someone else's: never touch it."""
        for node in self.topology.nodes:
            ours = (self.topology.state_dir / MARKER).exists() or self.topology.run_dir.exists()
            if host.netns_path(node).exists() and not ours:
                raise PreflightError(f"network namespace {node.netns} exists but was not made by dkc: "
                                     f"remove it (ip netns del {node.netns}) or choose another --name")

    def _binaries(self) -> dict[str, Path]:
        k8s = build.ensure_built(build.kubernetes_build(self.version))
        etcd = build.ensure_built(build.etcd_build())
        coredns = build.ensure_built(build.coredns_build())
        pause = build.ensure_built(build.pause_build())
        bins = {name: k8s / name for name in build.KUBERNETES_BINARIES}
        bins.update(etcd=etcd / "etcd", coredns=coredns / "coredns", pause=pause / "pause")
        return bins

    def _base_images(self, bins: dict[str, Path]) -> dict[str, tuple[str, Path]]:
        """The sandbox (pause) and CoreDNS images, each a single static binary."""
        made = {}
        for name, tag in (("pause", bins["pause"].parent.name), ("coredns", bins["coredns"].parent.name)):
            spec = oci.ImageSpec(name=f"local/{name}:{tag}", entrypoint=[f"/{name}"])
            binary = bins[name]

            def layer(out: Path, binary: Path = binary, name: str = name) -> None:
                oci.write_layer_from_files([(f"/{name}", binary, 0o755)], out)

            made[name] = (spec.reference, oci.cached_image(spec, [binary.parent.name], layer))
        return made

    def _components(self) -> list[config.Component]:
        bins = {name: Path(name) for name in (*build.KUBERNETES_BINARIES, "etcd")}
        components = config.control_plane_components(self.topology, bins)
        for node in self.topology.nodes:
            components += config.node_components(self.topology, node, bins)
        return components

    def _write_files(self, bins: dict[str, Path], pause_image: str) -> None:
        topo = self.topology
        nodes = topo.nodes
        pki.create_all(topo.pki_dir, topo.name, [n.name for n in nodes], [n.ip for n in nodes], topo.api_service_ip)
        for name, kubeconfig in config.component_kubeconfigs(topo).items():
            path = topo.kubeconfig if name == "admin" else topo.state_dir / f"{name}.kubeconfig"
            path.write_text(config.to_yaml(kubeconfig))
            path.chmod(0o600)
        for node in nodes:
            state = topo.state_dir / node.name
            (state / "cni").mkdir(parents=True, exist_ok=True)
            (state / "cni" / "10-dkc.conflist").write_text(config.cni_config(topo, node))
            (state / "containerd.toml").write_text(config.containerd_config(topo, node, pause_image))
            (state / "kubelet.yaml").write_text(config.to_yaml(config.kubelet_config(topo, node)))
            (state / "kube-proxy.yaml").write_text(config.to_yaml(config.kube_proxy_config(topo, node)))
            (state / "resolv.conf").write_text("# cluster DNS only: no resolver outside this machine\n")
        (topo.state_dir / MARKER).write_text(json.dumps(
            {"name": topo.name, "kubernetes_version": self.version, "node_count": topo.node_count}))

    def _start(self, node: Node, component: config.Component) -> None:
        self._children[component.name] = host.spawn(self.topology, node, component, self.topology.state_dir / "logs")

    def _log_tail(self, component: str, lines: int = 3) -> str:
        log = self.topology.state_dir / "logs" / f"{component}.log"
        text = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
        return " | ".join(text[-lines:]) or "(no output)"

    def _alive(self, component: config.Component) -> None:
        """Stop a wait early when a component we started has exited (our child: waitpid tells at once)."""
        pid = self._children[component.name]
        exited, status = os.waitpid(pid, os.WNOHANG)
        if exited:
            raise TerminalState(f"{component.name} exited with status {os.waitstatus_to_exitcode(status)}: "
                                f"{self._log_tail(component.name)}")

    def _bring_up(self, bins: dict[str, Path], archives: dict[str, tuple[str, Path]]) -> None:
        topo = self.topology
        with phase("Writing PKI, kubeconfigs and component configs"):
            topo.state_dir.mkdir(parents=True, exist_ok=True)
            self._write_files(bins, archives["pause"][0])
        with phase("Creating the node's network namespace, mount namespace and cgroups"):
            host.create_cgroups(topo)
            for node in topo.nodes:
                host.create_netns(node)
            host.create_mount_ns(topo)
        control_plane = config.control_plane_components(topo, bins)
        node = topo.control_plane
        containerd, kubelet, kube_proxy = config.node_components(topo, node, bins)
        with phase("Starting containerd and loading the base images"):
            self._start(node, containerd)
            wait_for("containerd to answer on its socket", lambda: self._containerd_up(node, containerd), 30,
                     interval=0.2)
            for _, archive in archives.values():
                self.load_image(archive)
        with phase("Starting etcd and kube-apiserver"):
            for component in control_plane[:2]:
                self._start(node, component)
            api = api_client(topo.kubeconfig)
            wait_for("kube-apiserver /readyz", lambda: self._apiserver_ready(api, control_plane[:2]), 60,
                     interval=0.5)
        with phase("Starting kube-controller-manager and kube-scheduler"):
            for component in control_plane[2:]:
                self._start(node, component)
        with phase("Starting kubelet and kube-proxy"):
            self._start(node, kubelet)
            self._start(node, kube_proxy)
            wait_for(f"node {node.name} to register", lambda: self._node_registered(api, node, kubelet), 60)
        with phase("Deploying CoreDNS"):
            template = (Path(__file__).parent / "coredns.yaml").read_text()
            manifests.apply(api, manifests.render(template, IMAGE=archives["coredns"][0],
                                                  DNS_IP=topo.dns_service_ip, CLUSTER_DOMAIN="cluster.local"))
        wait_ready(api, topo.node_count)

    def _containerd_up(self, node: Node, containerd: config.Component) -> Observation[None]:
        self._alive(containerd)
        socket = config.socket_path(self.topology, node)
        proc = subprocess.run(["ctr", "--address", str(socket), "version"], capture_output=True, text=True)
        return Observation(proc.returncode == 0, proc.stderr.strip()[-200:] or "socket not yet there")

    def _apiserver_ready(self, api: client.ApiClient, components: list[config.Component]) -> Observation[None]:
        for component in components:
            self._alive(component)
        response = api.call_api("/readyz", "GET", auth_settings=["BearerToken"], _preload_content=False,
                                _return_http_data_only=True, _request_timeout=5)
        return Observation(response.status == 200, f"/readyz {response.status}: {response.data[:200]!r}")

    def _node_registered(self, api: client.ApiClient, node: Node, kubelet: config.Component) -> Observation[None]:
        self._alive(kubelet)
        names = [n.metadata.name for n in client.CoreV1Api(api).list_node(_request_timeout=5).items]
        return Observation(node.name in names, f"nodes: {names or 'none'}")
