"""The ``kind`` provider: Kubernetes in Docker containers, for laptops and CI machines with Docker."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from clusters.errors import ClusterError, PreflightError
from clusters.provider import ClusterInfo, ClusterStatus, Provider, ProviderOptions
from clusters.readiness import api_client, server_version, wait_ready
from common.progress import phase, say

CONFIG_DIR = Path(__file__).parent


def config_file(node_count: int) -> Path:
    """single.yaml for one node, multi.yaml (a control plane and two workers) otherwise."""
    return CONFIG_DIR / ("single.yaml" if node_count == 1 else "multi.yaml")


def create_command(name: str, config: Path, kubeconfig: Path, k8s_version: str | None) -> list[str]:
    argv = ["kind", "create", "cluster", "--name", name, "--config", str(config), "--kubeconfig", str(kubeconfig),
            "--wait", "120s"]
    if k8s_version:
        argv += ["--image", f"kindest/node:{k8s_version}"]
    return argv


class KindProvider(Provider):
    kind = "kind"

    def __init__(self, options: ProviderOptions) -> None:
        self.options = options
        self.name = options.name
        self._kubeconfig = options.kubeconfig or Path.home() / ".kube" / f"dkc-kind-{self.name}"

    def _preflight(self) -> None:
        for tool in ("kind", "docker"):
            if shutil.which(tool) is None:
                raise PreflightError(f"{tool} is not installed: the kind provider needs kind and a Docker engine "
                                     "(or use --cluster local / --cluster existing)")
        if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
            raise PreflightError("the Docker engine is not reachable (`docker info` failed): start it and retry")

    def _clusters(self) -> list[str]:
        proc = subprocess.run(["kind", "get", "clusters"], capture_output=True, text=True)
        return proc.stdout.split() if proc.returncode == 0 else []

    def kubeconfig(self) -> Path:
        return self._kubeconfig

    def info(self) -> ClusterInfo:
        return ClusterInfo(provider=self.kind, name=self.name, kubeconfig=self._kubeconfig,
                           context=f"kind-{self.name}", kubernetes_version=self.options.k8s_version or "",
                           node_count=self.options.node_count, created_by_us=True,
                           capabilities=frozenset({"load-image"}))

    def status(self) -> ClusterStatus:
        if shutil.which("kind") is None or self.name not in self._clusters():
            return ClusterStatus(exists=False, healthy=False)
        try:
            version = server_version(api_client(self._kubeconfig, f"kind-{self.name}"))
        except Exception as exc:
            return ClusterStatus(True, False, [f"apiserver not answering: {exc}"])
        return ClusterStatus(True, True, [f"apiserver {version}", f"kubeconfig: {self._kubeconfig}"])

    def create(self) -> ClusterInfo:
        self._preflight()
        if self.status().healthy:
            say(f"✓ Reusing kind cluster {self.name}")
            return self.info()
        self._kubeconfig.parent.mkdir(parents=True, exist_ok=True)
        argv = create_command(self.name, config_file(self.options.node_count), self._kubeconfig,
                              self.options.k8s_version)
        try:
            with phase(f"Creating kind cluster {self.name}"):
                proc = subprocess.run(argv, text=True, capture_output=True)
                if proc.returncode != 0:
                    raise ClusterError(f"kind create cluster failed: {proc.stderr.strip().splitlines()[-1:]}")
            wait_ready(api_client(self._kubeconfig, f"kind-{self.name}"), self.options.node_count)
        except BaseException:
            if not self.options.keep:
                self.delete()
            raise
        return self.info()

    def delete(self) -> None:
        with phase(f"Deleting kind cluster {self.name}"):
            subprocess.run(["kind", "delete", "cluster", "--name", self.name, "--kubeconfig", str(self._kubeconfig)],
                           capture_output=True, text=True)

    def load_image(self, archive: Path) -> None:
        proc = subprocess.run(["kind", "load", "image-archive", str(archive), "--name", self.name],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise ClusterError(f"kind load image-archive {archive.name} failed: {proc.stderr.strip()}")
