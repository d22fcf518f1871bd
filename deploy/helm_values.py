"""The values the suite passes to the official Dagster Helm chart: its images, its PostgreSQL (and Redis), its
sample code locations and the instance settings a combination needs, rendered from ``DeploymentSettings``.

The chart's own PostgreSQL, RabbitMQ and Redis are bitnami subcharts, which cannot be had offline: the suite runs
its own PostgreSQL (and Redis for celery-k8s) from its images and points the chart at them. Field names follow the
chart's values.yaml (``postgresql.postgresqlHost``, ``generatePostgresqlPasswordSecret``, ``redis.host``, ...).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from deploy import manifests, names
from deploy import settings as s
from deploy.errors import DeployError
from deploy.sample_location import split_image, values_snippet
from deploy.settings import DeploymentSettings

__all__ = ["CELERY_LAUNCHER", "K8S_LAUNCHER", "SUBCHART_CONDITIONS", "chart_problem", "chart_values",
           "missing_subcharts", "option_problem", "subchart_message", "user_values"]

K8S_LAUNCHER = "K8sRunLauncher"
CELERY_LAUNCHER = "CeleryK8sRunLauncher"
# Dagster's LocalComputeLogManager, through the chart's CustomComputeLogManager (the chart offers no local type).
LOCAL_COMPUTE_LOGS = {"module": "dagster.core.storage.local_compute_log_manager", "class": "LocalComputeLogManager"}
# The chart's readiness probe of a code location execs `dagster api grpc-health-check`, a Dagster import per probe:
# its 10 s timeout is exceeded on a busy 2-core node and the location never becomes Ready. Same probe, more time.
CODE_LOCATION_READINESS = {"enabled": True, "periodSeconds": 20, "timeoutSeconds": 30, "successThreshold": 1,
                           "failureThreshold": 15}
# The chart's liveness probe of a Celery worker runs `dagster-celery status` (a Celery import and a broadcast ping)
# with a 10 s timeout every 10 s: on a busy 2-core node it times out and the kubelet kills workers mid-task, whose
# runs then wait for lost tasks. Same probe, more time.
CELERY_WORKER_LIVENESS = {"initialDelaySeconds": 15, "periodSeconds": 60, "timeoutSeconds": 60, "successThreshold": 1,
                          "failureThreshold": 5}
# Which value turns each of the chart's bitnami dependencies on (the `condition` of each in its Chart.yaml).
SUBCHART_CONDITIONS = {"postgresql": "postgresql.enabled", "rabbitmq": "rabbitmq.enabled", "redis": "redis.internal"}


def image(reference: str, pull_policy: str) -> dict[str, str]:
    """The chart's ``image`` block (repository, tag, pullPolicy) for an image reference ``repo:tag``."""
    repository, tag = split_image(reference)
    return {"repository": repository, "tag": tag, "pullPolicy": pull_policy}


# The chart's templates/configmap-instance.yaml renders these run_monitoring keys and no other (no
# max_runtime_seconds): a setting it cannot render is refused, never dropped without a word.
CHART_CANNOT_RENDER = ("the official chart renders no run_monitoring.max_runtime_seconds "
                       "(templates/configmap-instance.yaml)")


def _instance(cfg: DeploymentSettings) -> dict[str, Any]:
    """dagsterDaemon's run coordinator, run monitoring and run retries: the chart renders them into dagster.yaml."""
    if cfg.run_monitoring_max_runtime_seconds:
        raise DeployError(f"{CHART_CANNOT_RENDER}: an instance-wide max runtime cannot be set through its values")
    return {
        "runCoordinator": {"enabled": True, "type": "QueuedRunCoordinator", "config": {
            "queuedRunCoordinator": {"dequeueIntervalSeconds": cfg.dequeue_interval_seconds,
                                     **manifests.tag_limits("tagConcurrencyLimits", cfg)}}},
        "runMonitoring": {"enabled": cfg.run_monitoring,
                          "startTimeoutSeconds": cfg.run_monitoring_start_timeout_seconds,
                          "cancelTimeoutSeconds": cfg.run_monitoring_cancel_timeout_seconds,
                          "pollIntervalSeconds": cfg.run_monitoring_poll_interval_seconds,
                          "maxResumeRunAttempts": cfg.max_resume_run_attempts},
        "runRetries": {"enabled": cfg.run_retries, "maxRetries": cfg.max_retries},
    }


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(part.title() for part in rest)


def _run_launcher(cfg: DeploymentSettings) -> dict[str, Any]:
    # Run pods (and the step pods that inherit the launcher's config) write compute logs to the node directory.
    logs = {"volumes": [manifests._compute_log_volume(cfg)], "volumeMounts": [manifests._compute_log_mount()]}
    if cfg.uses_celery:
        return {"type": CELERY_LAUNCHER, "config": {"celeryK8sRunLauncher": {
            "image": image(cfg.images.dagster, cfg.image_pull_policy), "imagePullPolicy": cfg.image_pull_policy,
            "workerQueues": [{"name": s.CELERY_QUEUE, "replicaCount": cfg.celery_worker_replicas, "labels": {},
                              "nodeSelector": {}, "configSource": {},
                              "additionalCeleryArgs": [f"--concurrency={cfg.celery_worker_concurrency}"]}],
            "livenessProbe": CELERY_WORKER_LIVENESS, **logs}}}
    # run_k8s_config's keys are snake_case in dagster.yaml, camelCase in the chart's values (containerConfig, ...).
    run_k8s_config = {_camel(key): value for key, value in cfg.run_k8s_config.items()}
    return {"type": K8S_LAUNCHER, "config": {"k8sRunLauncher": {
        "imagePullPolicy": cfg.image_pull_policy, "runK8sConfig": run_k8s_config, **logs}}}


def _storage(cfg: DeploymentSettings, postgres_image: str) -> dict[str, Any]:
    """The suite's PostgreSQL and its password Secret (made by the suite before PostgreSQL starts)."""
    return {
        "global": {"postgresqlSecretName": names.POSTGRES_SECRET},
        "generatePostgresqlPasswordSecret": False,
        # The image is the chart's check-db-ready init container (`pg_isready`): our PostgreSQL image has it.
        "postgresql": {"enabled": False, "postgresqlHost": names.POSTGRES, "postgresqlUsername": "dagster",
                       "postgresqlDatabase": "dagster", "service": {"port": 5432},
                       "image": image(postgres_image, cfg.image_pull_policy)},
    }


def _broker(cfg: DeploymentSettings) -> dict[str, Any]:
    if not cfg.uses_celery:
        return {"redis": {"enabled": False, "internal": False}, "rabbitmq": {"enabled": False}}
    # Broker db 0, backend db 1: the same URLs as the suite's own deployment (DeploymentSettings.broker_url).
    return {"redis": {"enabled": True, "internal": False, "usePassword": False, "host": names.BROKER, "port": 6379,
                      "brokerDbNumber": 0, "backendDbNumber": 1},
            "rabbitmq": {"enabled": False}, "generateCeleryConfigSecret": True}


def chart_values(cfg: DeploymentSettings, busybox_image: str) -> dict[str, Any]:
    """The chart's values for ``cfg``; ``busybox_image`` runs the chart's `nslookup` init containers."""
    pull = cfg.image_pull_policy
    dagster = image(cfg.images.dagster, pull)
    locations = [(location.name, location.image) for location in cfg.code_locations]
    user_deployments = yaml.safe_load(values_snippet(locations, pull_policy=pull))["dagster-user-deployments"]
    user_deployments["deployments"] = [{**d, "readinessProbe": CODE_LOCATION_READINESS}
                                       for d in user_deployments["deployments"]]
    return {
        **_storage(cfg, cfg.images.postgres),
        **_broker(cfg),
        "dagsterWebserver": {"replicaCount": cfg.webserver_replicas, "image": dagster,
                             "volumes": [manifests._compute_log_volume(cfg)],
                             "volumeMounts": [manifests._compute_log_mount()]},
        "dagsterDaemon": {"image": dagster, **_instance(cfg)},
        "runLauncher": _run_launcher(cfg),
        "computeLogManager": {"type": "CustomComputeLogManager", "config": {"customComputeLogManager": {
            **LOCAL_COMPUTE_LOGS, "config": {"base_dir": s.COMPUTE_LOG_DIR}}}},
        "pipelineRun": {"image": dagster},
        "busybox": {"image": image(busybox_image, pull)},
        "dagster-user-deployments": {"enabled": True, "enableSubchart": True, **user_deployments},
        "telemetry": {"enabled": False},
    }


def _lookup(values: dict[str, Any], dotted: str) -> Any:
    node: Any = values
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def missing_subcharts(chart: Path) -> list[str]:
    """The dependencies in the chart's Chart.yaml that are neither a directory nor an archive in its charts/."""
    meta = yaml.safe_load((chart / "Chart.yaml").read_text()) or {}
    present = {p.name for p in (chart / "charts").glob("*")} if (chart / "charts").is_dir() else set()
    missing = []
    for dependency in meta.get("dependencies") or []:
        name = dependency.get("name", "")
        archive = f"{name}-{dependency.get('version', '')}.tgz"
        if name not in present and archive not in present:
            missing.append(name)
    return missing


def subchart_message(chart: Path, missing: list[str], values: dict[str, Any]) -> str | None:
    """One line when the chart cannot be installed offline for want of its bitnami subcharts, else None."""
    if not missing:
        return None
    enabled = [f"{SUBCHART_CONDITIONS[name]}=true" for name in missing
               if name in SUBCHART_CONDITIONS and _lookup(values, SUBCHART_CONDITIONS[name])]
    avoid = ", ".join(f"{v}=false" for v in SUBCHART_CONDITIONS.values())
    if enabled:
        return (f"your values turn on the chart's bitnami subchart(s) ({', '.join(enabled)}), which are not in "
                f"{chart}/charts and cannot be fetched offline: drop them from --helm-values (the suite runs its own "
                f"PostgreSQL and Redis and sets {avoid})")
    return (f"chart {chart} lists subcharts missing from {chart}/charts ({', '.join(missing)}; bitnami, not "
            f"obtainable offline) and helm refuses to install without them: the suite does not need them (it sets "
            f"{avoid}), so remove them from the dependencies in {chart}/Chart.yaml, or run "
            f"`helm dependency build {chart}` where their repository is reachable")


def user_values(values_file: Path | None) -> dict[str, Any]:
    """The user's --helm-values (empty without a file); raises ValueError naming the file when it is no YAML map."""
    if values_file is None:
        return {}
    try:
        loaded = yaml.safe_load(values_file.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"--helm-values {values_file} is unreadable ({str(exc).splitlines()[0]}): pass a YAML file "
                         "of chart values") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise ValueError(f"--helm-values {values_file} is not a map of chart values")
    return loaded or {}


def chart_problem(chart: Path, values_file: Path | None) -> str | None:
    """Why the chart cannot be installed here with the suite's values and the user's (None: it can)."""
    if not (chart / "Chart.yaml").is_file():
        return (f"--chart {chart} is not a Helm chart (no Chart.yaml in it): pass the directory of the official "
                "Dagster chart (helm/dagster)")
    try:
        values = user_values(values_file)
    except ValueError as exc:
        return str(exc)
    return subchart_message(chart, missing_subcharts(chart), values)


def option_problem(mode: str, chart: Path | None, values_file: Path | None) -> str | None:
    """What is wrong with --dagster/--chart/--helm-values together (None: nothing), for a one-line usage error."""
    if mode != "helm":
        return "--chart and --helm-values install the official chart: add --dagster helm" if (
            chart or values_file) else None
    if chart is None:
        return "--dagster helm needs --chart PATH: the directory of the official Dagster chart (helm/dagster)"
    return chart_problem(chart, values_file)
