"""Figures for the kind provider beside the local provider's, from one run: kind up cold (the node image built
and loaded), warm, and down, with what is left after down; then the local provider's warm up and down.

Cold here means the node image (its root filesystem, component images and archive) is built into a scratch
cache while the Go builds (Kubernetes, kind) come from the real one: they are the local provider's cold build,
timed by bench/local_cluster.py --cold. This prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.figures import print_figures
from clusters import ProviderOptions
from clusters.kind import KindProvider, docker
from clusters.local import LocalProvider, host
from images.cache import cache_root


def timed(what: Callable[[], object]) -> float:
    started = time.monotonic()
    what()
    return time.monotonic() - started


@contextmanager
def scratch_cache_but_go_builds() -> Iterator[Path]:
    """DKC_CACHE_DIR on a new directory whose bin/ (the Go builds) is the real cache's."""
    real_bin = cache_root() / "bin"
    previous = os.environ.get("DKC_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="dkc-cold-kind-") as scratch:
        os.environ["DKC_CACHE_DIR"] = scratch
        (cache_root() / "bin").parent.mkdir(parents=True, exist_ok=True)
        (cache_root() / "bin").symlink_to(real_bin, target_is_directory=True)
        try:
            yield Path(scratch)
        finally:
            if previous is None:
                os.environ.pop("DKC_CACHE_DIR")
            else:
                os.environ["DKC_CACHE_DIR"] = previous


def kind_leftovers(name: str) -> list[str]:
    """Containers of the cluster, the nodes' network, its egress rule, a dockerd we started: what down removes."""
    left = []
    if docker.engine_answers():
        nodes = docker.docker("ps", "-aq", "--filter", f"label=io.x-k8s.kind.cluster={name}", check=False)
        left += [f"container {c}" for c in nodes.stdout.split()]
        if docker.docker("network", "inspect", docker.NETWORK, check=False).returncode == 0:
            left.append(f"network {docker.NETWORK}")
    if docker.started_by_us():
        left.append("the dockerd we started")
    rules = subprocess.run(["iptables", "-w", "-S", "DOCKER-USER"], capture_output=True, text=True).stdout
    left += [f"iptables {line}" for line in rules.splitlines() if line.startswith("-A") and "DROP" in line]
    return left


def kind_figures(name: str, nodes: int, cold: bool) -> list[tuple[str, str]]:
    figures: list[tuple[str, str]] = []
    provider = KindProvider(ProviderOptions(name=name, node_count=nodes))
    docker.ensure_engine()
    provider.delete()
    if cold:
        docker.ensure_engine()
        loaded = docker.docker("images", "-q", "--filter", "reference=local/kind-node", check=False).stdout.split()
        for found in set(loaded):  # so that the node image is loaded again, not found in the engine
            docker.docker("rmi", "-f", found, check=False)
        with scratch_cache_but_go_builds():
            figures.append((f"kind up cold ({nodes} nodes: node image built and loaded, kind create)",
                            f"{timed(provider.create):.1f} s"))
        provider.delete()
    else:
        provider.create()  # the node image cached and loaded: the next up is warm
        provider.delete()
    figures.append((f"kind up warm ({nodes} nodes, node image cached, dockerd started)",
                    f"{timed(provider.create):.1f} s"))
    figures.append(("kind down (nodes, network, egress rule, our dockerd)", f"{timed(provider.delete):.1f} s"))
    left = kind_leftovers(name)
    figures.append(("kind: left behind after down", f"{len(left)}" + (f" ({'; '.join(left)})" if left else "")))
    return figures


def local_figures(name: str) -> list[tuple[str, str]]:
    provider = LocalProvider(ProviderOptions(name=name))
    provider.delete()
    provider.create()  # binaries and images cached: the next up is warm
    provider.delete()
    figures = [("local up warm (1 node)", f"{timed(provider.create):.1f} s"),
               ("local down", f"{timed(provider.delete):.1f} s")]
    figures.append(("local: left behind after down", str(len(host.leftovers(provider.topology)))))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time kind up with the node image built anew")
    parser.add_argument("--name", default="dkc-bench")
    parser.add_argument("--no-local", action="store_true", help="leave the local provider's figures out")
    args = parser.parse_args()
    figures = kind_figures(args.name, args.nodes, args.cold)
    if not args.no_local:
        figures += local_figures(args.name)
    print_figures(figures)


if __name__ == "__main__":
    main()
