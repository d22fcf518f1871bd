"""The helm binary and the helm commands the suite runs: install or upgrade a release, uninstall it.

helm is the user's own when one is on PATH; otherwise it is built once per version from the Go module proxy
into the cache, as the cluster's binaries are. helm talks to the cluster through a kubeconfig written from the
suite's own API client (same server, CA and credentials), so every provider works without a kubeconfig option.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from clusters.local.build import GoBuild, ensure_built, validate_version
from common.errors import DkcError

__all__ = ["DEFAULT_HELM_VERSION", "HELM_MODULE", "RELEASE_TIMEOUT", "HelmError", "HelmRelease", "ensure_helm",
           "helm_build", "kubeconfig_text", "run_helm"]

# v3.19 is built against client-go v0.34, the cluster's own Kubernetes minor version.
DEFAULT_HELM_VERSION = "v3.19.5"
HELM_MODULE = "helm.sh/helm/v3"
RELEASE_TIMEOUT = "10m"  # helm's own deadline for one command; readiness is gated by the suite afterwards


class HelmError(DkcError):
    """A helm command failed: one line naming the command, the release and helm's own last error line."""


def helm_build(version: str = DEFAULT_HELM_VERSION) -> GoBuild:
    validate_version(version, "helm")
    return GoBuild(name="helm", module=HELM_MODULE, version=version, binaries={"helm": f"{HELM_MODULE}/cmd/helm"},
                   ldflags=(f"-X {HELM_MODULE}/internal/version.version={version}",))


def ensure_helm(version: str = DEFAULT_HELM_VERSION) -> Path:
    """The helm to run: the one on PATH, else ours from the cache (built on first use)."""
    found = shutil.which("helm")
    if found:
        return Path(found)
    return ensure_built(helm_build(version)) / "helm"


@dataclass(frozen=True)
class HelmRelease:
    """One release of a chart in one namespace; builds the command lines (no cluster needed)."""

    name: str
    namespace: str
    chart: Path

    def upgrade_install(self, values_files: Sequence[Path]) -> list[str]:
        """Install the release, or upgrade it to these values (later files win, as with helm's own -f)."""
        files = [arg for path in values_files for arg in ("--values", str(path))]
        # No --wait: the suite gates readiness itself and names the pod that is not ready and why.
        return ["upgrade", "--install", self.name, str(self.chart), "--namespace", self.namespace,
                *files, "--timeout", RELEASE_TIMEOUT]

    def uninstall(self) -> list[str]:
        return ["uninstall", self.name, "--namespace", self.namespace, "--wait", "--timeout", RELEASE_TIMEOUT,
                "--ignore-not-found"]

    def status(self) -> list[str]:
        return ["status", self.name, "--namespace", self.namespace, "--output", "json"]


def kubeconfig_text(configuration: client.Configuration) -> str:
    """A kubeconfig for the server, CA and credentials (client certificate or bearer token) of a client."""
    user: dict[str, Any] = {}
    if configuration.cert_file:
        user.update({"client-certificate": configuration.cert_file, "client-key": configuration.key_file})
    token = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get("BearerToken")
    if token:
        user["token"] = token.removeprefix("Bearer ").strip()
    cluster: dict[str, Any] = {"server": configuration.host}
    if configuration.ssl_ca_cert:
        cluster["certificate-authority"] = configuration.ssl_ca_cert
    if not configuration.verify_ssl:
        cluster["insecure-skip-tls-verify"] = True
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dkc",
        "clusters": [{"name": "dkc", "cluster": cluster}], "users": [{"name": "dkc", "user": user}],
        "contexts": [{"name": "dkc", "context": {"cluster": "dkc", "user": "dkc"}}],
    }, sort_keys=False)


@contextmanager
def _kubeconfig(api: client.ApiClient) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="dkc-helm-") as directory:
        path = Path(directory) / "kubeconfig"
        path.touch(mode=0o600)  # it may hold a token
        path.write_text(kubeconfig_text(api.configuration))
        yield path


def run_helm(api: client.ApiClient, args: list[str], what: str) -> str:
    """Run ``helm args`` against the cluster ``api`` talks to; a failure is a HelmError with helm's last line."""
    helm = ensure_helm()
    with _kubeconfig(api) as kubeconfig:
        env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HELM_CACHE_HOME": str(kubeconfig.parent / "cache"),
               "HELM_CONFIG_HOME": str(kubeconfig.parent / "config"), "HELM_DATA_HOME": str(kubeconfig.parent / "data")}
        done = subprocess.run([str(helm), *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
        raise HelmError(f"helm {args[0]} ({what}) failed: {last.removeprefix('Error: ')}")
    return done.stdout

