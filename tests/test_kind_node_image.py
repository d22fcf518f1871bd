"""The kind node image's pure parts: kubeadm's image names, containerd's config, the runtime spec, the egress rule."""

from __future__ import annotations

from clusters.kind import docker, node_image
from clusters.kind.runc_shim import patch_process, process_file_of

KUBEADM_LIST = """registry.k8s.io/kube-apiserver:v1.33.13
registry.k8s.io/kube-controller-manager:v1.33.13
registry.k8s.io/kube-scheduler:v1.33.13
registry.k8s.io/kube-proxy:v1.33.13
registry.k8s.io/coredns/coredns:v1.12.0
registry.k8s.io/pause:3.10
registry.k8s.io/etcd:3.5.24-0
"""


def test_kubeadm_images_are_keyed_by_component() -> None:
    images = node_image.parse_image_list(KUBEADM_LIST)
    assert images["coredns"] == "registry.k8s.io/coredns/coredns:v1.12.0"
    assert images["etcd"] == "registry.k8s.io/etcd:3.5.24-0" and images["pause"] == "registry.k8s.io/pause:3.10"
    assert len(images) == 7


def test_containerd_config_names_kubeadms_pause_and_restricts_oom_score_adj() -> None:
    kind = ('[plugins."io.containerd.grpc.v1.cri"]\n  sandbox_image = "registry.k8s.io/pause:3.10"\n'
            "  restrict_oom_score_adj = false\n")
    config = node_image.containerd_config(kind, "registry.k8s.io/pause:3.10.1")
    assert 'sandbox_image = "registry.k8s.io/pause:3.10.1"' in config
    assert "restrict_oom_score_adj = true" in config and "= false" not in config


def test_cri_base_spec_adds_kinds_hook_and_drops_rlimits_without_touching_the_default() -> None:
    default = {"process": {"rlimits": [{"type": "RLIMIT_NOFILE"}], "cwd": "/"}}
    spec = node_image.cri_base_spec(default)
    assert spec["hooks"]["createContainer"] == [{"path": "/kind/bin/mount-product-files.sh"}]
    assert "rlimits" not in spec["process"] and "rlimits" in default["process"]


def test_the_cni_manifest_runs_the_pod_network_image() -> None:
    assert "image: {image}" in node_image.CNI_MANIFEST and "imagePullPolicy: Never" in node_image.CNI_MANIFEST
    assert "$NODE_NAME" in node_image.PODNET_SCRIPT and "ip route replace" in node_image.PODNET_SCRIPT


def test_docker_exec_process_files_are_patched_too() -> None:
    assert str(process_file_of(["--root", "/r", "exec", "--process", "/tmp/p.json", "id"])) == "/tmp/p.json"
    assert str(process_file_of(["exec", "--process=/tmp/q.json", "id"])) == "/tmp/q.json"
    assert process_file_of(["create", "--bundle", "/b", "id"]) is None
    process = {"capabilities": {"bounding": ["CAP_SYS_ADMIN", "CAP_SYS_RESOURCE"]}, "oomScoreAdj": -999}
    assert patch_process(process, {"CAP_SYS_RESOURCE"})
    assert process == {"capabilities": {"bounding": ["CAP_SYS_ADMIN"]}, "oomScoreAdj": 0}


def test_dockerd_we_start_has_no_masquerade_no_upstream_dns_and_the_shim_only_when_needed() -> None:
    argv = docker.dockerd_command("/usr/sbin/dockerd", None)
    assert "--ip-masq=false" in argv and argv[argv.index("--dns") + 1] == "127.0.0.1" and "--bridge=none" in argv
    assert "--add-runtime" not in argv
    with_shim = docker.dockerd_command("/usr/sbin/dockerd", docker.STATE / "runc-shim")
    assert with_shim[with_shim.index("--default-runtime") + 1] == docker.SHIM_RUNTIME


def test_egress_rule_lets_the_nodes_bridge_talk_only_to_itself() -> None:
    assert docker.egress_rule("br-0123456789ab") == ["DOCKER-USER", "-i", "br-0123456789ab", "!", "-o",
                                                     "br-0123456789ab", "-j", "DROP"]


def test_what_dockerd_leaves_in_iptables_is_found_and_nothing_else() -> None:
    listing = "\n".join([
        "-P FORWARD DROP", "-N DOCKER", "-N DOCKER-ISOLATION-STAGE-1", "-N DOCKER-USER", "-N KUBE-FORWARD",
        "-A FORWARD -j DOCKER-USER", "-A FORWARD -o br-0220f981b352 -j DOCKER",
        "-A FORWARD -i docker0 ! -o docker0 -j ACCEPT", "-A FORWARD -j KUBE-FORWARD",
        "-A DOCKER-USER -j RETURN",
    ])
    rules, chains = docker.docker_rules(listing)
    assert chains == ["DOCKER", "DOCKER-ISOLATION-STAGE-1", "DOCKER-USER"]
    assert rules == [["FORWARD", "-j", "DOCKER-USER"], ["FORWARD", "-o", "br-0220f981b352", "-j", "DOCKER"],
                     ["FORWARD", "-i", "docker0", "!", "-o", "docker0", "-j", "ACCEPT"]]
