"""Self-tests: names, addresses and component settings of a local cluster (no cluster needed)."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import yaml

from clusters.local import config
from clusters.local.topology import POD_CIDR, Topology


def test_names_and_addresses_derive_from_the_cluster_name() -> None:
    topo = Topology("dkc")
    node = topo.control_plane
    assert node.netns == "dkc-dkc"
    assert topo.cgroup == "dkc-dkc"
    assert len(node.veth_host) <= 15, "Linux interface names are at most 15 characters"
    link = ipaddress.ip_network(f"{node.host_ip}/30", strict=False)
    assert ipaddress.ip_address(node.ip) in link
    assert topo.api_service_ip == "10.96.0.1"
    assert topo.dns_service_ip == "10.96.0.10"
    assert ipaddress.ip_network(node.pod_cidr).subnet_of(ipaddress.ip_network(POD_CIDR))


def test_two_clusters_get_different_links() -> None:
    a, b = Topology("dkc").control_plane, Topology("dkc-lifecycle").control_plane
    assert (a.host_ip, a.veth_host, a.netns) != (b.host_ip, b.veth_host, b.netns)


@pytest.mark.parametrize("bad", ["", "Upper", "1starts-with-digit", "has_underscore", "x" * 21])
def test_bad_cluster_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cluster name"):
        Topology(bad)


def test_node_count_is_part_of_the_design() -> None:
    nodes = Topology("dkc", node_count=3).nodes
    assert [n.name for n in nodes] == ["dkc-control-plane", "dkc-worker1", "dkc-worker2"]
    assert len({n.pod_cidr for n in nodes}) == 3


def _bins() -> dict[str, Path]:
    names = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "etcd")
    return {n: Path("/cache") / n for n in names}


def _flags(argv: list[str]) -> dict[str, str]:
    return {argv[i]: argv[i + 1] for i in range(1, len(argv) - 1) if argv[i].startswith("--")}


def test_apiserver_uses_rbac_node_authorization_and_reaches_kubelets_by_ip() -> None:
    topo = Topology("dkc")
    apiserver = next(c for c in config.control_plane_components(topo, _bins()) if c.name == "kube-apiserver")
    flags = _flags(apiserver.argv)
    assert flags["--authorization-mode"] == "Node,RBAC"
    assert flags["--enable-admission-plugins"] == "NodeRestriction"
    assert flags["--kubelet-preferred-address-types"] == "InternalIP"
    assert flags["--service-cluster-ip-range"] == topo.service_cidr
    assert flags["--service-account-signing-key-file"].endswith("sa.key")


def test_kubelet_runs_pods_under_the_clusters_own_cgroup_and_resolver() -> None:
    topo = Topology("dkc")
    kubelet = config.kubelet_config(topo, topo.control_plane)
    assert kubelet["cgroupRoot"] == "/dkc-dkc"
    assert kubelet["cgroupDriver"] == "cgroupfs"
    assert kubelet["failSwapOn"] is False
    assert kubelet["clusterDNS"] == [topo.dns_service_ip]
    assert kubelet["resolvConf"].startswith(str(topo.state_dir))
    assert kubelet["containerRuntimeEndpoint"] == f"unix://{config.socket_path(topo, topo.control_plane)}"
    assert kubelet["authentication"]["anonymous"]["enabled"] is False


def test_containerd_config_restricts_oom_score_and_keeps_state_apart() -> None:
    topo = Topology("dkc")
    text = config.containerd_config(topo, topo.control_plane, "docker.io/local/pause:x")
    assert "restrict_oom_score_adj = true" in text
    assert 'sandbox_image = "docker.io/local/pause:x"' in text
    assert f'root = "{topo.state_dir}' in text
    assert "/var/lib/containerd" not in text and '"/run/containerd' not in text


def test_cni_bridge_never_masquerades() -> None:
    topo = Topology("dkc")
    bridge = json.loads(config.cni_config(topo, topo.control_plane))["plugins"][0]
    assert bridge["type"] == "bridge"
    assert bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"][0][0]["subnet"] == topo.control_plane.pod_cidr


def test_kube_proxy_uses_iptables_and_leaves_conntrack_size_alone() -> None:
    topo = Topology("dkc")
    proxy = config.kube_proxy_config(topo, topo.control_plane)
    assert proxy["mode"] == "iptables"
    assert proxy["conntrack"]["maxPerCore"] == 0
    yaml.safe_load(config.to_yaml(proxy))


def test_every_component_has_its_own_kubeconfig_identity() -> None:
    topo = Topology("dkc")
    kubeconfigs = config.component_kubeconfigs(topo)
    users = {name: kc["users"][0]["user"]["client-certificate"] for name, kc in kubeconfigs.items()}
    assert users["scheduler"].endswith("scheduler.crt")
    assert users["kubelet-dkc-control-plane"].endswith("kubelet-dkc-control-plane.crt")
    assert all(kc["clusters"][0]["cluster"]["server"] == topo.server for kc in kubeconfigs.values())


def test_a_cgroup_removed_while_its_processes_are_read_counts_as_empty(monkeypatch: pytest.MonkeyPatch,
                                                                        tmp_path: Path) -> None:
    import errno as errnos

    from clusters.local import host

    pod = tmp_path / "dkc-dkc" / "kubepods" / "pod1"
    pod.mkdir(parents=True)
    (tmp_path / "dkc-dkc" / "cgroup.procs").write_text("41\n")
    (pod / "cgroup.procs").write_text("42\n")
    monkeypatch.setattr(host, "cgroup_hierarchies", lambda: [tmp_path])
    real_read = Path.read_text

    def half_removed(self: Path, *args: object, **kwargs: object) -> str:
        if self.parent == pod:  # cgroup v1 answers ENODEV for a directory being removed
            raise OSError(errnos.ENODEV, "No such device")
        return real_read(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", half_removed)
    assert host.cgroup_pids(Topology("dkc")) == {41}
