"""Self-tests of --dagster helm: option validation, the chart values rendered from settings, helm command lines,
the kubeconfig written for helm, the subchart check (no cluster, no helm binary)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from kubernetes import client

from common.errors import PreflightError
from deploy import names
from deploy import settings as s
from deploy.errors import DeployError
from deploy.helm import HelmRelease, helm_build, kubeconfig_text
from deploy.helm_deploy import suite_objects
from deploy.helm_values import chart_problem, chart_values, missing_subcharts, option_problem, user_values
from deploy.images import code_locations
from deploy.settings import DeploymentSettings, HelmChart, Images
from images.busybox import NSLOOKUP

BUSYBOX = "docker.io/local/dkc-chart-busybox:abc"


def settings(combination: str = "k8s-job", **changes: object) -> DeploymentSettings:
    cfg = DeploymentSettings(
        combination=combination, namespace=f"dkc-helm-{combination}",
        images=Images(dagster="docker.io/local/dagster:1.13.27-x", postgres="docker.io/local/postgres:15-y",
                      broker="docker.io/local/redis:z"),
        code_locations=code_locations([("alpha", "docker.io/local/alpha:a1"), ("beta", "docker.io/local/beta:b1")]),
        postgres_password="pw", test_secret_value="secret-value",
        helm=HelmChart(chart=Path("/charts/dagster"), busybox_image=BUSYBOX))
    return replace(cfg, **changes)


def chart(tmp_path: Path, dependencies: list[dict[str, str]], present: tuple[str, ...] = ()) -> Path:
    root = tmp_path / "dagster"
    (root / "charts").mkdir(parents=True)
    (root / "Chart.yaml").write_text(yaml.safe_dump({"apiVersion": "v2", "name": "dagster", "version": "0.0.1",
                                                     "dependencies": dependencies}))
    for name in present:
        (root / "charts" / name).mkdir()
    return root


OFFICIAL_DEPENDENCIES = [{"name": "dagster-user-deployments", "version": "0.0.1-dev"},
                         {"name": "postgresql", "version": "8.1.0", "repository": "https://bitnami"},
                         {"name": "rabbitmq", "version": "6.16.3", "repository": "https://bitnami"},
                         {"name": "redis", "version": "12.7.4", "repository": "https://bitnami"}]


# --- options -------------------------------------------------------------------------------------------------

def test_chart_options_need_dagster_helm(tmp_path: Path) -> None:
    assert option_problem("deploy", None, None) is None
    assert "add --dagster helm" in (option_problem("deploy", tmp_path, None) or "")
    assert "add --dagster helm" in (option_problem("existing", None, tmp_path / "v.yaml") or "")


def test_dagster_helm_needs_a_chart_directory(tmp_path: Path) -> None:
    assert "needs --chart PATH" in (option_problem("helm", None, None) or "")
    assert "no Chart.yaml" in (option_problem("helm", tmp_path, None) or "")


def test_a_chart_with_its_subcharts_vendored_is_accepted(tmp_path: Path) -> None:
    root = chart(tmp_path, OFFICIAL_DEPENDENCIES, present=("dagster-user-deployments", "postgresql"))
    (root / "charts" / "rabbitmq-6.16.3.tgz").write_bytes(b"")
    (root / "charts" / "redis-12.7.4.tgz").write_bytes(b"")
    assert option_problem("helm", root, None) is None


def test_the_official_chart_without_bitnami_subcharts_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    root = chart(tmp_path, OFFICIAL_DEPENDENCIES, present=("dagster-user-deployments",))
    assert missing_subcharts(root) == ["postgresql", "rabbitmq", "redis"]
    problem = option_problem("helm", root, None) or ""
    assert "\n" not in problem
    assert "postgresql, rabbitmq, redis" in problem
    assert f"remove them from the dependencies in {root}/Chart.yaml" in problem
    assert "postgresql.enabled=false, rabbitmq.enabled=false, redis.internal=false" in problem


def test_user_values_that_turn_a_missing_subchart_on_are_refused(tmp_path: Path) -> None:
    root = chart(tmp_path, OFFICIAL_DEPENDENCIES[:2], present=("dagster-user-deployments",))
    values = tmp_path / "mine.yaml"
    values.write_text("postgresql:\n  enabled: true\n")
    problem = chart_problem(root, values) or ""
    assert "postgresql.enabled=true" in problem and "drop them from --helm-values" in problem


def test_user_values_must_exist_and_be_a_map(tmp_path: Path) -> None:
    root = chart(tmp_path, [])
    assert "unreadable" in (chart_problem(root, tmp_path / "absent.yaml") or "")
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n")
    assert "not a map" in (chart_problem(root, listed) or "")
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert user_values(empty) == {} and user_values(None) == {}


# --- values ----------------------------------------------------------------------------------------------------

def test_values_point_the_chart_at_the_suites_postgres_and_secret() -> None:
    values = chart_values(settings(), BUSYBOX)
    assert values["postgresql"]["enabled"] is False
    assert values["postgresql"]["postgresqlHost"] == names.POSTGRES
    assert values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"] == names.POSTGRES_SECRET
    assert "pw" not in yaml.safe_dump(values), "the password lives in the suite's Secret, never in the values"
    assert values["postgresql"]["image"] == {"repository": "docker.io/local/postgres", "tag": "15-y",
                                             "pullPolicy": "Never"}


def test_every_image_is_ours_and_never_pulled() -> None:
    values = chart_values(settings("celery-k8s"), BUSYBOX)
    blocks = [values["dagsterWebserver"]["image"], values["dagsterDaemon"]["image"], values["busybox"]["image"],
              values["postgresql"]["image"], values["pipelineRun"]["image"],
              values["runLauncher"]["config"]["celeryK8sRunLauncher"]["image"],
              *(d["image"] for d in values["dagster-user-deployments"]["deployments"])]
    assert all(block["pullPolicy"] == "Never" and block["tag"] for block in blocks)
    assert values["busybox"]["image"]["repository"] == "docker.io/local/dkc-chart-busybox"


def test_sample_locations_come_from_the_sample_location_values() -> None:
    deployments = chart_values(settings(), BUSYBOX)["dagster-user-deployments"]["deployments"]
    assert [d["name"] for d in deployments] == ["alpha", "beta"]
    assert deployments[0]["envConfigMaps"] == [{"name": s.TEST_ENV_CONFIG_MAP}]
    assert deployments[0]["envSecrets"] == [{"name": s.TEST_ENV_SECRET}, {"name": s.location_secret("alpha")}]
    probe = deployments[0]["readinessProbe"]
    assert "exec" not in probe and probe["timeoutSeconds"] == 30, "the chart's own probe command, with more time"


def test_instance_settings_map_to_the_chart_keys() -> None:
    cfg = settings(max_resume_run_attempts=1, run_monitoring_poll_interval_seconds=7, max_retries=2,
                   webserver_replicas=2, dequeue_interval_seconds=1, run_monitoring_start_timeout_seconds=90,
                   run_monitoring_cancel_timeout_seconds=60)
    values = chart_values(cfg, BUSYBOX)
    daemon = values["dagsterDaemon"]
    assert daemon["runMonitoring"] == {"enabled": True, "startTimeoutSeconds": 90, "cancelTimeoutSeconds": 60,
                                       "pollIntervalSeconds": 7, "maxResumeRunAttempts": 1}
    assert daemon["runRetries"] == {"enabled": True, "maxRetries": 2}
    assert daemon["runCoordinator"]["config"]["queuedRunCoordinator"]["dequeueIntervalSeconds"] == 1
    assert "tagConcurrencyLimits" not in daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert values["dagsterWebserver"]["replicaCount"] == 2


def test_tag_concurrency_limits_map_to_the_chart_key() -> None:
    values = chart_values(settings(tag_concurrency_limits=(("dkc/c24-queue", "one-at-a-time", 1),)), BUSYBOX)
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    # templates/helpers/instance/_run-coordinator.tpl renders it as dagster.yaml's tag_concurrency_limits
    assert queued["tagConcurrencyLimits"] == [{"key": "dkc/c24-queue", "value": "one-at-a-time", "limit": 1}]


def test_an_instance_max_runtime_the_chart_cannot_render_is_refused_not_dropped() -> None:
    with pytest.raises(DeployError, match=r"renders no run_monitoring\.max_runtime_seconds"):
        chart_values(settings(run_monitoring_max_runtime_seconds=20), BUSYBOX)


def test_k8s_launcher_gets_run_k8s_config_in_camel_case_and_compute_log_volumes() -> None:
    launcher = chart_values(settings(), BUSYBOX)["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    config = launcher["config"]["k8sRunLauncher"]
    assert set(config["runK8sConfig"]) == {"containerConfig", "podSpecConfig"}
    assert config["volumes"][0]["hostPath"]["path"].endswith("/dkc-helm-k8s-job")
    assert config["volumeMounts"][0]["mountPath"] == s.COMPUTE_LOG_DIR


def test_celery_values_use_the_suites_redis_and_worker_shape() -> None:
    values = chart_values(settings("celery-k8s", celery_worker_replicas=3, celery_worker_concurrency=2), BUSYBOX)
    assert values["runLauncher"]["type"] == "CeleryK8sRunLauncher"
    queue = values["runLauncher"]["config"]["celeryK8sRunLauncher"]["workerQueues"][0]
    assert queue["name"] == s.CELERY_QUEUE and queue["replicaCount"] == 3
    assert queue["additionalCeleryArgs"] == ["--concurrency=2"]
    redis = values["redis"]
    assert (redis["enabled"], redis["internal"], redis["host"]) == (True, False, names.BROKER)
    assert (redis["brokerDbNumber"], redis["backendDbNumber"]) == (0, 1)
    liveness = values["runLauncher"]["config"]["celeryK8sRunLauncher"]["livenessProbe"]
    assert "exec" not in liveness and liveness["timeoutSeconds"] == 60, "the chart's own probe command, more time"


def test_compute_logs_are_local_through_the_custom_manager() -> None:
    manager = chart_values(settings(), BUSYBOX)["computeLogManager"]
    assert manager["type"] == "CustomComputeLogManager"
    custom = manager["config"]["customComputeLogManager"]
    assert custom["class"] == "LocalComputeLogManager" and custom["config"] == {"base_dir": s.COMPUTE_LOG_DIR}


def test_suite_objects_are_the_secrets_and_config_map_the_chart_is_pointed_at() -> None:
    objects = sorted((doc["kind"], doc["metadata"]["name"]) for doc in suite_objects(settings()))
    assert objects == sorted([("ConfigMap", s.TEST_ENV_CONFIG_MAP), ("Secret", names.POSTGRES_SECRET),
                              ("Secret", s.TEST_ENV_SECRET), ("Secret", s.location_secret("alpha")),
                              ("Secret", s.location_secret("beta"))])
    values = {doc["metadata"]["name"]: doc.get("stringData") for doc in suite_objects(settings())}
    assert values[s.location_secret("beta")] == {
        s.LOCATION_SECRET_ENV: s.location_secret_value("secret-value", "beta")}


# --- helm --------------------------------------------------------------------------------------------------------

def test_install_is_an_upgrade_install_with_our_values_first_and_no_wait() -> None:
    release = HelmRelease(name="dagster", namespace="dkc-helm-k8s-job", chart=Path("/c/dagster"))
    args = release.upgrade_install([Path("/tmp/ours.yaml"), Path("/home/me/mine.yaml")])
    assert args[:4] == ["upgrade", "--install", "dagster", "/c/dagster"]
    assert args[args.index("--namespace") + 1] == "dkc-helm-k8s-job"
    values = [args[i + 1] for i, arg in enumerate(args) if arg == "--values"]
    assert values == ["/tmp/ours.yaml", "/home/me/mine.yaml"], "the user's values come last, so they win"
    assert "--wait" not in args


def test_uninstall_waits_and_tolerates_a_missing_release() -> None:
    args = HelmRelease(name="dagster", namespace="ns", chart=Path("/c")).uninstall()
    assert args[:2] == ["uninstall", "dagster"] and "--wait" in args and "--ignore-not-found" in args


def test_helm_is_built_from_the_module_proxy_with_its_version_stamped() -> None:
    build = helm_build("v3.19.5")
    assert build.binaries == {"helm": "helm.sh/helm/v3/cmd/helm"}
    assert "-X helm.sh/helm/v3/internal/version.version=v3.19.5" in build.ldflags
    with pytest.raises(PreflightError, match=r"vMAJOR\.MINOR\.PATCH"):
        helm_build("3.19")


def test_kubeconfig_for_helm_carries_the_clients_server_ca_and_credentials() -> None:
    cfg = client.Configuration()
    cfg.host, cfg.ssl_ca_cert, cfg.cert_file, cfg.key_file = "https://10.0.0.1:6443", "/ca.crt", "/c.crt", "/c.key"
    written = yaml.safe_load(kubeconfig_text(cfg))
    cluster, user = written["clusters"][0]["cluster"], written["users"][0]["user"]
    assert cluster == {"server": "https://10.0.0.1:6443", "certificate-authority": "/ca.crt"}
    assert user == {"client-certificate": "/c.crt", "client-key": "/c.key"}
    token = client.Configuration()
    token.host, token.api_key = "https://k", {"authorization": "Bearer abc"}
    assert yaml.safe_load(kubeconfig_text(token))["users"][0]["user"] == {"token": "abc"}


def test_chart_busybox_nslookup_asks_each_search_domain_as_an_absolute_name() -> None:
    assert NSLOOKUP.startswith("#!/bin/sh\n")
    assert 'busybox nslookup "$1.$domain."' in NSLOOKUP
