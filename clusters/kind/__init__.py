"""The ``kind`` provider: Kubernetes in Docker containers, for laptops and CI machines with Docker.

With nothing but Debian's docker.io and the Go module proxy it brings everything itself: dockerd when none answers
(clusters/kind/docker.py), kind built from its module, and a node image made from our own Kubernetes build with every
image kubeadm needs inside (clusters/kind/node_image.py), so nothing is pulled. A user with the internet can name an
upstream image instead (``--kind-node-image kindest/node:v1.34.0``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from kubernetes import client

from clusters.errors import ClusterError
from clusters.kind import docker
from clusters.local import build
from clusters.provider import RUN_NODE_LABEL, ClusterInfo, ClusterStatus, Provider, ProviderOptions
from clusters.readiness import api_client, server_version, wait_ready
from common.errors import clean_up_after
from common.progress import phase, say

_FORWARD_RE = re.compile(r"^[ \t]*forward[ \t]+\.[^\n{]*(\{[^}]*\})?[ \t]*\n", re.MULTILINE)


def cluster_config(node_count: int) -> str:
    """One control plane, the rest workers: with more than one node, pods of one run can land apart. The first
    worker carries RUN_NODE_LABEL, the node the suite's instance sends run pods to (C9)."""
    if node_count < 1:
        raise ClusterError(f"--nodes must be at least 1, not {node_count}")
    lines = ["kind: Cluster", "apiVersion: kind.x-k8s.io/v1alpha4", "nodes:", "  - role: control-plane"]
    for index in range(1, node_count):
        lines.append("  - role: worker")
        if index == 1:
            lines += ["    labels:", f'      {RUN_NODE_LABEL}: "true"']
    return "\n".join(lines) + "\n"


def create_command(kind: str, name: str, config: Path, kubeconfig: Path, image: str) -> list[str]:
    return [kind, "create", "cluster", "--name", name, "--config", str(config), "--kubeconfig", str(kubeconfig),
            "--image", image, "--wait", "180s"]


def without_forward(corefile: str) -> str:
    """A Corefile with no ``forward`` block: names outside the cluster get no answer instead of a query that
    leaves this machine (the local provider's CoreDNS has none either)."""
    return _FORWARD_RE.sub("", corefile)


class KindProvider(Provider):
    kind = "kind"

    def __init__(self, options: ProviderOptions) -> None:
        self.options = options
        self.name = options.name
        self._kubeconfig = options.kubeconfig or Path.home() / ".kube" / f"dkc-kind-{self.name}"
        self._kind: str | None = None

    @property
    def k8s_version(self) -> str:
        return self.options.k8s_version or build.DEFAULT_K8S_VERSION

    def _kind_binary(self) -> str:
        """kind from PATH, else built from its module (cached like the Kubernetes binaries)."""
        if self._kind is None:
            found = shutil.which("kind")
            if found is None:
                from clusters.kind.node_image import kind_build
                found = str(build.ensure_built(kind_build()) / "kind")
            self._kind = found
        return self._kind

    def _run_kind(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self._kind_binary(), *args], capture_output=True, text=True,
                              env=_kind_env())

    def _clusters(self) -> list[str]:
        if not docker.engine_answers():
            return []
        proc = self._run_kind("get", "clusters")
        return proc.stdout.split() if proc.returncode == 0 else []

    def kubeconfig(self) -> Path:
        return self._kubeconfig

    def info(self) -> ClusterInfo:
        return ClusterInfo(provider=self.kind, name=self.name, kubeconfig=self._kubeconfig,
                           context=f"kind-{self.name}", kubernetes_version=self.k8s_version,
                           node_count=self.options.node_count, created_by_us=True,
                           capabilities=frozenset({"load-image"}))

    def status(self) -> ClusterStatus:
        if self.name not in self._clusters():
            return ClusterStatus(exists=False, healthy=False)
        try:
            version = server_version(api_client(self._kubeconfig, f"kind-{self.name}"))
        except Exception as exc:
            return ClusterStatus(True, False, [f"apiserver not answering: {exc}"])
        return ClusterStatus(True, True, [f"apiserver {version}", f"kubeconfig: {self._kubeconfig}"])

    def _node_image(self) -> str:
        if self.options.node_image:
            return self.options.node_image
        from clusters.kind.node_image import docker_load, node_image
        image = node_image(self.k8s_version)
        local_name = image.reference.removeprefix("docker.io/")
        if docker.docker("image", "inspect", local_name, check=False).returncode != 0:
            docker_load(image)
        return local_name

    def create(self) -> ClusterInfo:
        self._kind_binary()
        docker.ensure_engine()
        if self.status().healthy:
            say(f"✓ Reusing kind cluster {self.name}")
            return self.info()
        try:
            image = self._node_image()
            docker.ensure_network()
            config = docker.STATE / f"kind-{self.name}.yaml"
            config.write_text(cluster_config(self.options.node_count))
            self._kubeconfig.parent.mkdir(parents=True, exist_ok=True)
            with phase(f"Creating kind cluster {self.name} ({self.options.node_count} node(s), {image})"):
                self._create(create_command(self._kind_binary(), self.name, config, self._kubeconfig, image))
            api = api_client(self._kubeconfig, f"kind-{self.name}")
            _drop_dns_forward(api)
            wait_ready(api, self.options.node_count)
        except BaseException as failure:
            if not self.options.keep:
                clean_up_after(failure, self.delete, f"kind cluster {self.name}")
            raise
        return self.info()

    def _create(self, argv: list[str]) -> None:
        """kind create, its progress lines passed on as they come; a failure names kind's last error line."""
        process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                   env=_kind_env())
        seen: list[str] = []
        assert process.stdout is not None
        for output in process.stdout:
            for line in (part.strip() for part in output.split("\r")):  # kind redraws its status lines with \r
                if line:
                    seen.append(line)
                    if line.startswith(("✓", "✗", "ERROR")):
                        say(f"  {line}")
        if process.wait() != 0:
            errors = [line for line in seen if "ERROR" in line or "error" in line.lower()] or seen
            raise ClusterError(f"kind create cluster failed: {errors[-1].strip() if errors else 'no output'}")

    def delete(self) -> None:
        with phase(f"Deleting kind cluster {self.name}"):
            if docker.engine_answers():
                self._run_kind("delete", "cluster", "--name", self.name, "--kubeconfig", str(self._kubeconfig))
                docker.remove_network()
            (docker.STATE / f"kind-{self.name}.yaml").unlink(missing_ok=True)
            docker.stop_engine_if_ours()

    def node_network_command(self, node: str, argv: list[str]) -> list[str]:
        # A kind node is a container: its processes, iptables included, are in the node's network namespace.
        return ["docker", "exec", node, *argv]

    def load_image(self, archive: Path) -> None:
        proc = self._run_kind("load", "image-archive", str(archive), "--name", self.name)
        if proc.returncode != 0:
            raise ClusterError(f"kind load image-archive {archive.name} failed: {proc.stderr.strip()[-300:]}")


def _kind_env() -> dict[str, str]:
    return {**os.environ, "KIND_EXPERIMENTAL_DOCKER_NETWORK": docker.NETWORK}


def _drop_dns_forward(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    config_map = core.read_namespaced_config_map("coredns", "kube-system", _request_timeout=10)
    corefile = (config_map.data or {}).get("Corefile", "")
    patched = without_forward(corefile)
    if patched != corefile:
        core.patch_namespaced_config_map("coredns", "kube-system", {"data": {"Corefile": patched}},
                                         _request_timeout=10)
