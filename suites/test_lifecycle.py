"""A local cluster's lifecycle: `up` reuses a healthy cluster, recovers from a killed one, and `down`
leaves no process, network namespace, mount, cgroup, directory or iptables rule behind."""

from __future__ import annotations

import subprocess

import pytest

from clusters import ProviderOptions
from clusters.local import LocalProvider, host

pytestmark = [pytest.mark.lifecycle, pytest.mark.needs_cluster]

NAME = "dkc-lifecycle"


def host_iptables() -> str:
    """The host's own rules; the cluster's kube-proxy rules live in its namespace, never here."""
    return subprocess.run(["iptables-save"], capture_output=True, text=True, check=True).stdout


def without_counters(rules: str) -> list[str]:
    return sorted(line for line in rules.splitlines() if not line.startswith(("#", ":")))


@pytest.fixture
def provider(pytestconfig: pytest.Config) -> LocalProvider:
    if pytestconfig.getoption("--cluster") != "local":
        pytest.skip("the lifecycle of processes, namespaces and mounts is the local provider's")
    return LocalProvider(ProviderOptions(name=NAME, k8s_version=pytestconfig.getoption("--k8s-version")))


def test_up_reuses_recovers_and_down_leaves_nothing(provider: LocalProvider) -> None:
    topology = provider.topology
    rules_before = without_counters(host_iptables())
    try:
        provider.create()
        assert provider.status().healthy, f"fresh cluster is not healthy: {provider.status().summary()}"
        apiserver = host.component_pids(topology, "kube-apiserver")

        provider.create()
        assert host.component_pids(topology, "kube-apiserver") == apiserver, (
            "a second `up` restarted a healthy cluster instead of reusing it")

        host.kill_all(topology)  # what a SIGKILLed run leaves: state, namespaces, mounts, no processes
        stale = provider.status()
        assert stale.exists and not stale.healthy, f"a killed cluster looks healthy: {stale.summary()}"

        provider.create()
        assert provider.status().healthy, f"`up` did not recover a killed cluster: {provider.status().summary()}"
    finally:
        provider.delete()

    assert host.leftovers(topology) == [], "down left these behind"
    assert without_counters(host_iptables()) == rules_before, "the host's iptables rules changed"

