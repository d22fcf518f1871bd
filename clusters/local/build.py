"""Build the cluster's binaries from the Go module proxy, once per version, into the cache.

Kubernetes cannot be ``go install``-ed: its module replaces its 31 staging modules with local
paths. So each build gets a small module of our own that requires the upstream module and
replaces every staging module with its matching published release (``v0.<minor>.<patch>``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from clusters.errors import BuildError, PreflightError
from common.progress import phase, say
from images.cache import cache_root, inputs_key

DEFAULT_K8S_VERSION = "v1.34.4"
# The Kubernetes matrix (docs/nightly.yml): the newest patch of three minor lines that builds from the Go module proxy
# here (v1.32.10 to .13 need staging modules it refuses); the README says which ran here.
TESTED_K8S_VERSIONS = ("v1.32.9", "v1.33.13", DEFAULT_K8S_VERSION)
DEFAULT_ETCD_VERSION = "v3.6.16"
DEFAULT_COREDNS_VERSION = "v1.12.4"

KUBERNETES_MODULE = "k8s.io/kubernetes"
KUBERNETES_BINARIES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
    "kubectl",
)
# Bump when the way we build changes, so old cache entries are not reused.
RECIPE_REVISION = "1"
_REFUSED_RE = re.compile(r"(\S+@v[^\s:]+): reading \S+: 4\d\d ")
_VERSION_RE = re.compile(r"^v\d+\.\d+\.\d+$")
_STAGING_RE = re.compile(r"^\s*(k8s\.io/[\w.-]+)\s+=>\s+\./staging/", re.MULTILINE)


@dataclass(frozen=True)
class GoBuild:
    """One cached build: a module at a version and the binaries made from its packages."""

    name: str
    module: str
    version: str
    binaries: dict[str, str]  # output name -> package path
    replaces: dict[str, str] = field(default_factory=dict)
    ldflags: tuple[str, ...] = ()
    local_source: Path | None = None  # a package of ours instead of a module from the proxy

    @property
    def key(self) -> str:
        extra = self.local_source.joinpath("main.go").read_bytes() if self.local_source else b""
        return inputs_key(
            RECIPE_REVISION, _go_version(), self.module, self.version, json.dumps(self.binaries),
            json.dumps(self.replaces, sort_keys=True), " ".join(self.ldflags), extra,
        )

    @property
    def out_dir(self) -> Path:
        return cache_root() / "bin" / f"{self.name}-{self.version}-{self.key}"


def _go_version() -> str:
    return _run_go(["env", "GOVERSION"], cwd=None).strip()


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never fetch a newer Go toolchain; build with the one installed here.
    env.update(GOTOOLCHAIN="local", CGO_ENABLED="0", GOFLAGS="-mod=mod -buildvcs=false")
    return env


def _run_go(args: list[str], cwd: Path | None) -> str:
    if shutil.which("go") is None:
        raise PreflightError("Go is not installed: install Go >= 1.24 (e.g. apt-get install golang) and retry")
    proc = subprocess.run(["go", *args], cwd=cwd, env=_go_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        unserved = refused_modules(proc.stderr)
        if unserved:
            raise BuildError(f"go {' '.join(args[:3])} failed: the Go module proxy does not serve "
                             f"{', '.join(unserved)}; pick another patch release (its modules may be served)")
        tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
        raise BuildError(f"go {' '.join(args[:3])} failed: {tail}")
    return proc.stdout


def refused_modules(go_stderr: str) -> list[str]:
    """``module@version`` of each module whose download the proxy refused (4xx), in the order go names them."""
    return list(dict.fromkeys(_REFUSED_RE.findall(go_stderr)))


def module_go_mod(module: str, version: str) -> str:
    """The go.mod text of a published module version; a clear error if it does not exist."""
    proc = subprocess.run(
        ["go", "mod", "download", "-json", f"{module}@{version}"],
        env=_go_env(), capture_output=True, text=True, cwd="/",
    )
    info = json.loads(proc.stdout or "{}") if proc.stdout.strip().startswith("{") else {}
    if proc.returncode != 0 or "GoMod" not in info:
        raise BuildError(
            f"{module}@{version} is not published on the Go module proxy; "
            f"pick an existing release (e.g. {DEFAULT_K8S_VERSION} for Kubernetes)"
        )
    return Path(info["GoMod"]).read_text()


def staging_replaces(kubernetes_go_mod: str, version: str) -> dict[str, str]:
    """Map each staging module of k8s.io/kubernetes to its published ``v0.<minor>.<patch>``."""
    major_minor_patch = version.lstrip("v").split(".")
    staging_version = "v0." + ".".join(major_minor_patch[1:3])
    return {name: staging_version for name in _STAGING_RE.findall(kubernetes_go_mod)}


def validate_version(version: str, what: str = "Kubernetes") -> None:
    if not _VERSION_RE.match(version):
        raise PreflightError(
            f"{what} version {version!r} is not of the form vMAJOR.MINOR.PATCH (e.g. {DEFAULT_K8S_VERSION})")


def kubernetes_build(version: str) -> GoBuild:
    validate_version(version)
    go_mod = module_go_mod(KUBERNETES_MODULE, version)
    major, minor = version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    ldflags = (f"-X {pkg}.gitVersion={version}", f"-X {pkg}.gitMajor={major}", f"-X {pkg}.gitMinor={minor}",
               f"-X {pkg}.gitTreeState=clean")
    return GoBuild(
        name="kubernetes", module=KUBERNETES_MODULE, version=version,
        binaries={b: f"{KUBERNETES_MODULE}/cmd/{b}" for b in KUBERNETES_BINARIES},
        replaces=staging_replaces(go_mod, version), ldflags=ldflags,
    )


def kubeadm_build(version: str) -> GoBuild:
    """kubeadm alone (the kind provider's nodes need it, the local provider does not), built like the rest."""
    servers = kubernetes_build(version)
    return GoBuild(name="kubeadm", module=servers.module, version=version,
                   binaries={"kubeadm": f"{KUBERNETES_MODULE}/cmd/kubeadm"}, replaces=servers.replaces,
                   ldflags=servers.ldflags)


def etcd_build(version: str = DEFAULT_ETCD_VERSION) -> GoBuild:
    validate_version(version, "etcd")
    module = "go.etcd.io/etcd/server/v3"  # its root package is etcd's main
    return GoBuild(name="etcd", module=module, version=version, binaries={"etcd": module})


def coredns_build(version: str = DEFAULT_COREDNS_VERSION) -> GoBuild:
    validate_version(version, "CoreDNS")
    module = "github.com/coredns/coredns"
    return GoBuild(name="coredns", module=module, version=version, binaries={"coredns": module})


def pause_build() -> GoBuild:
    source = Path(__file__).parent / "pause"
    return GoBuild(name="pause", module="", version="v1", binaries={"pause": "."}, local_source=source)


def go_mod_text(build: GoBuild, go_directive: str) -> str:
    lines = ["module dkc.build/" + build.name, "", f"go {go_directive}", ""]
    if build.module:
        lines.append(f"require {build.module} {build.version}")
    for name, version in sorted(build.replaces.items()):
        lines.append(f"replace {name} => {name} {version}")
    return "\n".join(lines) + "\n"


def ensure_built(build: GoBuild) -> Path:
    """Return the directory holding the build's binaries, building it first if not cached."""
    out = build.out_dir
    if (out / ".complete").exists():
        return out
    label = f"{build.name} {build.version}" if build.module else build.name
    with phase(f"Building {label} (cached in {out.parent}; once per version)"):
        work = cache_root() / "build" / out.name
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        if build.local_source:
            shutil.copy(build.local_source / "main.go", work / "main.go")
        upstream_go = "1.24.0"
        if build.module:
            upstream = module_go_mod(build.module, build.version)
            match = re.search(r"^go (\S+)", upstream, re.MULTILINE)
            upstream_go = match.group(1) if match else upstream_go
        (work / "go.mod").write_text(go_mod_text(build, upstream_go))
        staging = out.with_name(out.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        if build.module:
            say(f"  resolving {build.module}@{build.version} and its dependencies")
            _run_go(["mod", "download", build.module], cwd=work)
        ldflags = " ".join(("-s", "-w", *build.ldflags))
        for index, (binary, package) in enumerate(build.binaries.items(), start=1):
            started = time.monotonic()
            say(f"  [{index}/{len(build.binaries)}] go build {binary}")
            _run_go(["build", "-trimpath", "-ldflags", ldflags, "-o", str(staging / binary), package], cwd=work)
            say(f"  [{index}/{len(build.binaries)}] {binary} built in {time.monotonic() - started:.0f}s")
        (staging / ".complete").write_text(build.version + "\n")
        shutil.rmtree(out, ignore_errors=True)
        staging.rename(out)
        shutil.rmtree(work, ignore_errors=True)
    return out
