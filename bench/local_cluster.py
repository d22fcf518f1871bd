"""Figures for the local provider: cold build, warm `up`, `down`, control-plane memory.

Targets (from the issue): warm up <= 60 s, down <= 10 s. This prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from bench.figures import print_figures
from clusters import ProviderOptions
from clusters.local import LocalProvider, host
from clusters.local.build import coredns_build, ensure_built, etcd_build, kubernetes_build, pause_build


def rss_mib(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


def cold_build(version: str) -> float:
    with tempfile.TemporaryDirectory(prefix="dkc-cold-") as scratch:
        previous = os.environ.get("DKC_CACHE_DIR")
        os.environ["DKC_CACHE_DIR"] = scratch
        try:
            started = time.monotonic()
            for build in (kubernetes_build(version), etcd_build(), coredns_build(), pause_build()):
                ensure_built(build)
            return time.monotonic() - started
        finally:
            if previous is None:
                os.environ.pop("DKC_CACHE_DIR")
            else:
                os.environ["DKC_CACHE_DIR"] = previous


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cold", action="store_true", help="also time a cold build into a scratch cache")
    parser.add_argument("--k8s-version", default="v1.34.4")
    parser.add_argument("--name", default="dkc-bench")
    args = parser.parse_args()

    figures: list[tuple[str, str]] = []
    if args.cold:
        figures.append(("cold build (k8s, etcd, CoreDNS, pause)", f"{cold_build(args.k8s_version):.0f} s"))
    provider = LocalProvider(ProviderOptions(name=args.name, k8s_version=args.k8s_version))
    provider.delete()
    provider.create()  # makes sure binaries and images are cached: the next up is warm
    provider.delete()

    started = time.monotonic()
    provider.create()
    figures.append(("warm up (cached binaries, to nodes Ready + CoreDNS)", f"{time.monotonic() - started:.1f} s"))
    topology = provider.topology
    control_plane = set()
    for binary in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet",
                   "kube-proxy", "containerd"):
        control_plane |= host.component_pids(topology, binary)
    figures.append(("control-plane RSS (etcd, apiserver, cm, scheduler, kubelet, proxy, containerd)",
                    f"{rss_mib(control_plane):.0f} MiB"))
    everything = rss_mib(host.cgroup_pids(topology))
    figures.append(("all cluster processes RSS (incl. CoreDNS, shims)", f"{everything:.0f} MiB"))

    started = time.monotonic()
    provider.delete()
    figures.append(("down", f"{time.monotonic() - started:.1f} s"))
    figures.append(("left behind after down", str(len(host.leftovers(topology)))))

    print_figures(figures)


if __name__ == "__main__":
    main()
