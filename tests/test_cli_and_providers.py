"""Self-tests: option parsing, provider selection and the Kubernetes build recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import build_parser, main, pytest_argv
from clusters import ClusterError, PreflightError, ProviderOptions, get_provider
from clusters.kind import cluster_config, create_command, without_forward
from clusters.local import build
from clusters.provider import RUN_NODE_LABEL
from deploy.settings import INSTANCE_RUN_K8S_CONFIG, run_k8s_config_for


def test_unknown_provider_is_one_clear_line() -> None:
    with pytest.raises(ClusterError, match=r"unknown cluster provider 'docker': choose one of local, kind, existing"):
        get_provider("docker", ProviderOptions())


def test_cli_reports_an_unknown_provider_and_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--cluster", "nope"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dkc: error: unknown cluster provider")


def test_malformed_kubernetes_version_is_refused_before_any_build() -> None:
    with pytest.raises(PreflightError, match=r"not of the form vMAJOR\.MINOR\.PATCH"):
        get_provider("local", ProviderOptions(k8s_version="1.34"))


def test_test_command_passes_cluster_options_to_pytest() -> None:
    args = build_parser().parse_args(["test", "--k8s-version", "v1.34.4", "--keep", "--", "-k", "smoke"])
    argv = pytest_argv(args, ["tests", "suites"], args.pytest_args)
    assert argv[3:5] == ["tests", "suites"]
    assert "--cluster=local" in argv and "--k8s-version=v1.34.4" in argv and "--keep" in argv
    assert argv[-2:] == ["-k", "smoke"]


def test_the_combinations_overlap_on_workers_unless_the_pytest_arguments_choose() -> None:
    def distribution(*words: str) -> list[str]:
        args = build_parser().parse_args(["run", *words])
        return [a for a in pytest_argv(args, ["suites"], args.pytest_args) if a.startswith(("-n", "--num", "--dist"))]

    assert distribution() == ["--numprocesses=3", "--dist=loadgroup"]
    assert distribution("--workers", "2") == ["--numprocesses=2", "--dist=loadgroup"]
    assert distribution("--workers", "0") == []
    assert distribution("--", "-n", "1") == ["-n"]
    assert distribution("--", "-p", "no:xdist") == []


def test_a_module_the_proxy_refused_is_named() -> None:
    stderr = ("\tserver response: This module version is not available.\n"
              "/root/go/pkg/mod/k8s.io/kubernetes@v1.32.13/pkg/controller/endpointslice/endpointslice_controller.go:45:2:"
              " k8s.io/endpointslice@v0.32.13: reading https://proxy.example/k8s.io/endpointslice/@v/v0.32.13.zip: "
              "403 Forbidden\n\tserver response: This module version is not available.\n")
    assert build.refused_modules(stderr) == ["k8s.io/endpointslice@v0.32.13"]
    assert build.refused_modules("cmd/kubelet: undefined: foo") == []


def test_staging_modules_are_replaced_by_their_published_releases() -> None:
    go_mod = ("replace (\n\tk8s.io/api => ./staging/src/k8s.io/api\n"
              "\tk8s.io/kubectl => ./staging/src/k8s.io/kubectl\n)\n")
    assert build.staging_replaces(go_mod, "v1.34.4") == {"k8s.io/api": "v0.34.4", "k8s.io/kubectl": "v0.34.4"}
    text = build.go_mod_text(build.GoBuild(name="kubernetes", module="k8s.io/kubernetes", version="v1.34.4",
                                           binaries={}, replaces={"k8s.io/api": "v0.34.4"}), "1.24.0")
    assert "require k8s.io/kubernetes v1.34.4" in text
    assert "replace k8s.io/api => k8s.io/api v0.34.4" in text


def test_kind_config_has_one_control_plane_and_the_rest_workers() -> None:
    assert cluster_config(1).count("role: control-plane") == 1 and "worker" not in cluster_config(1)
    three = cluster_config(3)
    assert three.count("role: control-plane") == 1 and three.count("role: worker") == 2
    assert three.count(RUN_NODE_LABEL) == 1 and three.index(RUN_NODE_LABEL) > three.index("role: worker")
    assert RUN_NODE_LABEL not in cluster_config(1)
    with pytest.raises(ClusterError, match="at least 1"):
        cluster_config(0)
    argv = create_command("kind", "dkc", Path("/tmp/c.yaml"), Path("/tmp/kc"), "local/kind-node:v1.34.4-abc")
    assert argv[argv.index("--image") + 1] == "local/kind-node:v1.34.4-abc"


def test_kind_coredns_loses_its_forward_block_and_nothing_else() -> None:
    corefile = (".:53 {\n    errors\n    kubernetes cluster.local in-addr.arpa {\n       pods insecure\n    }\n"
                "    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    cache 30\n    reload\n}\n")
    patched = without_forward(corefile)
    assert "forward" not in patched and "max_concurrent" not in patched
    assert "pods insecure" in patched and "cache 30" in patched and patched.count("{") == patched.count("}")
    assert without_forward(".:53 {\n    forward . 8.8.8.8\n    reload\n}\n") == ".:53 {\n    reload\n}\n"


def test_the_instance_selects_the_run_node_only_on_a_cluster_that_has_one() -> None:
    assert run_k8s_config_for(None) == INSTANCE_RUN_K8S_CONFIG
    labelled = run_k8s_config_for(RUN_NODE_LABEL)
    assert labelled["pod_spec_config"] == {"node_selector": {RUN_NODE_LABEL: "true"}}
    assert labelled["container_config"] == INSTANCE_RUN_K8S_CONFIG["container_config"]
    assert INSTANCE_RUN_K8S_CONFIG["pod_spec_config"] == {"node_selector": {"kubernetes.io/os": "linux"}}
