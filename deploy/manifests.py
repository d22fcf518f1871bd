"""The Kubernetes objects of a chart-shaped Dagster deployment, as plain dicts (no cluster needed); PostgreSQL's
are deploy/postgres_manifests.py's, the labelled skeletons deploy/objects.py's."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from deploy import names, object_store, objects
from deploy import settings as s
from deploy.objects import Manifest
from deploy.postgres_manifests import postgres
from deploy.settings import CodeLocation, DeploymentSettings

DAGSTER_YAML = f"{s.DAGSTER_HOME}/dagster.yaml"
WORKSPACE_DIR = "/dagster-workspace"


def run_launcher(cfg: DeploymentSettings) -> dict[str, Any]:
    common = {
        "instance_config_map": names.INSTANCE_CONFIG_MAP,
        "dagster_home": s.DAGSTER_HOME,
        "postgres_password_secret": names.POSTGRES_SECRET,
        "load_incluster_config": True,
        "job_namespace": cfg.namespace,
        "image_pull_policy": cfg.image_pull_policy,
        "service_account_name": names.SERVICE_ACCOUNT,
        "env_config_maps": [names.PIPELINE_ENV_CONFIG_MAP],
        **({"env_secrets": [object_store.CREDENTIALS_SECRET]} if cfg.images.object_store else {}),
        # Run pods, and the step pods that inherit the launcher's config, write compute logs here.
        "volumes": [_compute_log_volume(cfg)],
        "volume_mounts": [_compute_log_mount()],
    }
    if cfg.uses_celery:
        return {"module": "dagster_celery_k8s", "class": "CeleryK8sRunLauncher",
                "config": {**common, "broker": cfg.broker_url, "backend": cfg.backend_url}}
    config = dict(common)
    if cfg.run_k8s_config:
        config["run_k8s_config"] = cfg.run_k8s_config
    return {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": config}


def tag_limits(key: str, cfg: DeploymentSettings) -> dict[str, Any]:
    """The run queue's tag concurrency limits under ``key`` (dagster.yaml's or the chart's spelling), if any."""
    limits = [{"key": tag, "value": value, "limit": limit} for tag, value, limit in cfg.tag_concurrency_limits]
    return {key: limits} if limits else {}


def instance_config(cfg: DeploymentSettings) -> dict[str, Any]:
    """dagster.yaml: Postgres storage (password from the Secret via env), queued runs, the launcher."""
    return {
        "storage": {"postgres": {"postgres_db": {
            "username": "dagster", "password": {"env": "DAGSTER_PG_PASSWORD"}, "hostname": names.POSTGRES,
            "db_name": "dagster", "port": 5432}}},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator",
                            "config": {"dequeue_interval_seconds": cfg.dequeue_interval_seconds,
                                       **tag_limits("tag_concurrency_limits", cfg)}},
        "run_launcher": run_launcher(cfg),
        "run_monitoring": {"enabled": cfg.run_monitoring,
                           "start_timeout_seconds": cfg.run_monitoring_start_timeout_seconds,
                           "cancel_timeout_seconds": cfg.run_monitoring_cancel_timeout_seconds,
                           "max_runtime_seconds": cfg.run_monitoring_max_runtime_seconds,
                           "poll_interval_seconds": cfg.run_monitoring_poll_interval_seconds,
                           "max_resume_run_attempts": cfg.max_resume_run_attempts},
        "run_retries": {"enabled": cfg.run_retries, "max_retries": cfg.max_retries},
        "compute_logs": (object_store.compute_log_manager(cfg) if cfg.images.object_store else
                         {"module": "dagster.core.storage.local_compute_log_manager",
                          "class": "LocalComputeLogManager", "config": {"base_dir": s.COMPUTE_LOG_DIR}}),
        "telemetry": {"enabled": False},
    }


def workspace_config(cfg: DeploymentSettings) -> dict[str, Any]:
    return {"load_from": [{"grpc_server": {"host": loc.service, "port": s.GRPC_PORT, "location_name": loc.name}}
                          for loc in cfg.code_locations]}


def container_context(cfg: DeploymentSettings, location: CodeLocation) -> dict[str, Any]:
    """What the chart passes as includeConfigInLaunchedRuns: runs and steps get the location's env."""
    return {"k8s": {
        "namespace": cfg.namespace,
        "image_pull_policy": cfg.image_pull_policy,
        "service_account_name": names.USER_DEPLOYMENTS_SERVICE_ACCOUNT,
        "env_vars": [f"{k}={v}" for k, v in location.env],
        "env_config_maps": [names.PIPELINE_ENV_CONFIG_MAP, *location.env_config_maps],
        "env_secrets": list(location.env_secrets),
    }}


def _dagster_env() -> list[dict[str, Any]]:
    return [
        {"name": "DAGSTER_HOME", "value": s.DAGSTER_HOME},
        {"name": "DAGSTER_PG_PASSWORD", "valueFrom": {"secretKeyRef": {
            "name": names.POSTGRES_SECRET, "key": names.POSTGRES_PASSWORD_KEY}}},
    ]


def _control_plane_env_from(cfg: DeploymentSettings) -> list[dict[str, Any]]:
    store = object_store.env_from() if cfg.images.object_store else []
    return [{"configMapRef": {"name": names.PIPELINE_ENV_CONFIG_MAP}}, *store]


def _instance_mount() -> dict[str, Any]:
    # Only dagster.yaml: Dagster processes write under DAGSTER_HOME, which must stay writable.
    return {"name": "dagster-instance", "mountPath": DAGSTER_YAML, "subPath": "dagster.yaml"}


def _compute_log_mount() -> dict[str, Any]:
    return {"name": "compute-logs", "mountPath": s.COMPUTE_LOG_DIR}


def _compute_log_volume(cfg: DeploymentSettings) -> dict[str, Any]:
    if cfg.images.object_store:
        # Only S3ComputeLogManager's staging: each pod its own, so that the webserver serves what it fetched from
        # the store, never a file a step left on the webserver's node.
        return {"name": "compute-logs", "emptyDir": {}}
    return {"name": "compute-logs", "hostPath": {"path": cfg.compute_log_host_path, "type": "DirectoryOrCreate"}}


def _instance_volume() -> dict[str, Any]:
    return {"name": "dagster-instance", "configMap": {"name": names.INSTANCE_CONFIG_MAP}}


def instance_checksum(cfg: DeploymentSettings) -> dict[str, str]:
    """Pod annotation that changes with dagster.yaml, so that a new instance config rolls the pods reading it."""
    digest = hashlib.sha256(yaml.safe_dump(instance_config(cfg), sort_keys=True).encode()).hexdigest()
    return {"checksum/dagster-instance": digest}


# The official chart's Roles, rule for rule: the control plane's account, and the user deployments' account that
# run and step pods use (no ConfigMaps, Secrets or Services: a workload needing more fails here as under the chart).
CONTROL_PLANE_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["batch"], "resources": ["jobs"],
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]},
    {"apiGroups": ["batch"], "resources": ["jobs/status"], "verbs": ["get", "watch", "list"]},
    {"apiGroups": [""], "resources": ["pods", "events"],
     "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]},
    {"apiGroups": [""], "resources": ["pods/log", "pods/status"], "verbs": ["get", "watch", "list"]},
]
USER_DEPLOYMENT_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["batch"], "resources": ["jobs", "jobs/status", "cronjobs"], "verbs": ["*"]},
    {"apiGroups": [""], "resources": ["pods", "pods/log", "pods/status"], "verbs": ["*"]},
]


RBAC = "rbac.authorization.k8s.io/v1"


def _account(name: str, namespace: str, rules: list[dict[str, Any]]) -> list[Manifest]:
    """A ServiceAccount with a Role of the same name bound to it."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": objects.meta(name, namespace, "rbac")},
        {"apiVersion": RBAC, "kind": "Role", "metadata": objects.meta(name, namespace, "rbac"), "rules": rules},
        {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": objects.meta(name, namespace, "rbac"),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
    ]


def foundation(cfg: DeploymentSettings) -> list[Manifest]:
    """Namespace-level objects: service accounts and roles, the Postgres secret, config maps."""
    ns = cfg.namespace
    return [
        *_account(names.SERVICE_ACCOUNT, ns, CONTROL_PLANE_RULES),
        *_account(names.USER_DEPLOYMENTS_SERVICE_ACCOUNT, ns, USER_DEPLOYMENT_RULES),
        {"apiVersion": "v1", "kind": "Secret",
         "metadata": objects.meta(names.POSTGRES_SECRET, ns, names.POSTGRESQL_COMPONENT), "type": "Opaque",
         "stringData": {names.POSTGRES_PASSWORD_KEY: cfg.postgres_password}},
        objects.config_map(names.INSTANCE_CONFIG_MAP, ns, "instance",
                           {"dagster.yaml": yaml.safe_dump(instance_config(cfg), sort_keys=False)}),
        objects.config_map(names.WORKSPACE_CONFIG_MAP, ns, "workspace",
                           {"workspace.yaml": yaml.safe_dump(workspace_config(cfg), sort_keys=False)}),
        objects.config_map(names.PIPELINE_ENV_CONFIG_MAP, ns, "pipeline-env", {"DAGSTER_HOME": s.DAGSTER_HOME}),
        objects.config_map(s.TEST_ENV_CONFIG_MAP, ns, "test-env", {s.CONFIG_MAP_ENV[0]: s.CONFIG_MAP_ENV[1]}),
        {"apiVersion": "v1", "kind": "Secret", "metadata": objects.meta(s.TEST_ENV_SECRET, ns, "test-env"),
         "type": "Opaque", "stringData": {s.SECRET_ENV_NAME: cfg.test_secret_value}},
        *location_secrets(cfg),
    ]


def location_secrets(cfg: DeploymentSettings) -> list[Manifest]:
    """The Secret of each code location that passes one of its own (C31)."""
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": objects.meta(s.location_secret(location.name),
                                                                             cfg.namespace, "test-env"),
             "type": "Opaque",
             "stringData": {s.LOCATION_SECRET_ENV: s.location_secret_value(cfg.test_secret_value, location.name)}}
            for location in cfg.code_locations if s.location_secret(location.name) in location.env_secrets]


def storage_annotation(cfg: DeploymentSettings) -> dict[str, str]:
    """Pod annotation naming PostgreSQL's data directory. Dagster creates its schema only when a process starts,
    so pods that ran against another database (a kept deployment from before the volume) roll with it."""
    volume = cfg.postgres_volume
    return {"dkc.dagster.io/postgresql-data-dir": volume.host_path if volume else "in-container"}


def _pod_annotations(cfg: DeploymentSettings) -> dict[str, str]:
    return {**instance_checksum(cfg), **storage_annotation(cfg)}


def broker(cfg: DeploymentSettings) -> list[Manifest]:
    if not cfg.uses_celery:
        return []
    pod = {"containers": [{"name": "redis", "image": cfg.images.broker, "imagePullPolicy": cfg.image_pull_policy,
                           "ports": [{"containerPort": 6379}],
                           "readinessProbe": {"tcpSocket": {"port": 6379}, "periodSeconds": 2}}]}
    return [objects.deployment(names.BROKER, cfg.namespace, names.REDIS_COMPONENT, pod, strategy="Recreate"),
            objects.service(names.BROKER, cfg.namespace, names.REDIS_COMPONENT, 6379, 6379)]


def code_location(cfg: DeploymentSettings, location: CodeLocation) -> list[Manifest]:
    """A user-code Deployment + Service, like the chart's dagster-user-deployments."""
    env = [
        *_dagster_env(),
        {"name": "DAGSTER_CURRENT_IMAGE", "value": location.image},
        {"name": "DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT", "value": json.dumps(container_context(cfg, location))},
        *({"name": k, "value": v} for k, v in location.env),
    ]
    env_from = [{"configMapRef": {"name": c}} for c in (names.PIPELINE_ENV_CONFIG_MAP, *location.env_config_maps)]
    env_from += [{"secretRef": {"name": name}} for name in location.env_secrets]
    env_from += object_store.env_from() if cfg.images.object_store else []
    pod = {
        "serviceAccountName": names.USER_DEPLOYMENTS_SERVICE_ACCOUNT,
        "containers": [{
            "name": "dagster-user-deployments", "image": location.image, "imagePullPolicy": cfg.image_pull_policy,
            "command": ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", str(s.GRPC_PORT),
                        "-f", location.python_file],
            "env": env, "envFrom": env_from,
            "ports": [{"containerPort": s.GRPC_PORT}],
            "volumeMounts": [_instance_mount()],
            # The chart execs `dagster api grpc-health-check`, which imports Dagster (seconds of CPU) on every
            # probe: a few locations on 2 cores then starve everything else. The server implements the standard
            # gRPC health service ("DagsterApi"), so the kubelet's native gRPC probe asks the same question.
            "readinessProbe": {"grpc": {"port": s.GRPC_PORT, "service": "DagsterApi"},
                               "periodSeconds": 5, "timeoutSeconds": 5, "failureThreshold": 3},
        }],
        "volumes": [_instance_volume()],
    }
    extra = {names.LOCATION_LABEL: location.name}
    return [
        objects.deployment(location.service, cfg.namespace, names.USER_DEPLOYMENTS_COMPONENT, pod,
                           annotations=storage_annotation(cfg), **extra),
        objects.service(location.service, cfg.namespace, names.USER_DEPLOYMENTS_COMPONENT, s.GRPC_PORT, s.GRPC_PORT,
                        **extra),
    ]


def _workspace_mount() -> dict[str, Any]:
    return {"name": "dagster-workspace-yaml", "mountPath": WORKSPACE_DIR}


def _workspace_volume() -> dict[str, Any]:
    return {"name": "dagster-workspace-yaml", "configMap": {"name": names.WORKSPACE_CONFIG_MAP}}


def webserver(cfg: DeploymentSettings) -> list[Manifest]:
    pod = {
        "serviceAccountName": names.SERVICE_ACCOUNT,
        "containers": [{
            "name": "dagster-webserver", "image": cfg.images.dagster, "imagePullPolicy": cfg.image_pull_policy,
            "command": ["dagster-webserver", "-h", "0.0.0.0", "-p", str(s.WEBSERVER_PORT),
                        "-w", f"{WORKSPACE_DIR}/workspace.yaml"],
            "env": _dagster_env(), "envFrom": _control_plane_env_from(cfg),
            "ports": [{"containerPort": s.WEBSERVER_PORT}],
            "volumeMounts": [_instance_mount(), _workspace_mount(), _compute_log_mount()],
            "readinessProbe": {"httpGet": {"path": "/server_info", "port": s.WEBSERVER_PORT},
                               "periodSeconds": 3, "timeoutSeconds": 3, "failureThreshold": 3},
        }],
        "volumes": [_instance_volume(), _workspace_volume(), _compute_log_volume(cfg)],
    }
    component = names.WEBSERVER_COMPONENT
    return [objects.deployment(names.WEBSERVER, cfg.namespace, component, pod, replicas=cfg.webserver_replicas,
                               annotations=_pod_annotations(cfg)),
            objects.service(names.WEBSERVER, cfg.namespace, component, s.WEBSERVER_PORT, s.WEBSERVER_PORT)]


def daemon(cfg: DeploymentSettings) -> list[Manifest]:
    pod = {
        "serviceAccountName": names.SERVICE_ACCOUNT,
        "containers": [{
            "name": "dagster-daemon", "image": cfg.images.dagster, "imagePullPolicy": cfg.image_pull_policy,
            "command": ["dagster-daemon", "run", "-w", f"{WORKSPACE_DIR}/workspace.yaml"],
            "env": _dagster_env(), "envFrom": _control_plane_env_from(cfg),
            "volumeMounts": [_instance_mount(), _workspace_mount()],
            "livenessProbe": {"exec": {"command": ["dagster-daemon", "liveness-check"]},
                              "initialDelaySeconds": 240, "periodSeconds": 30, "timeoutSeconds": 30,
                              "failureThreshold": 3},
        }],
        "volumes": [_instance_volume(), _workspace_volume()],
    }
    # One daemon at a time: Recreate never runs the old and the new side by side.
    return [objects.deployment(names.DAEMON, cfg.namespace, names.DAEMON_COMPONENT, pod, strategy="Recreate",
                               annotations=_pod_annotations(cfg))]


def celery_config(cfg: DeploymentSettings) -> dict[str, Any]:
    return {"execution": {"celery": {"broker": cfg.broker_url, "backend": cfg.backend_url}}}


def celery_workers(cfg: DeploymentSettings) -> list[Manifest]:
    if not cfg.uses_celery:
        return []
    pod = {
        "serviceAccountName": names.SERVICE_ACCOUNT,
        "containers": [{
            "name": "dagster-celery", "image": cfg.images.dagster, "imagePullPolicy": cfg.image_pull_policy,
            "command": ["dagster-celery", "worker", "start", "-A", "dagster_celery_k8s.app",
                        "-y", "/opt/dagster/celery/celery.yaml", "-q", s.CELERY_QUEUE,
                        "--", f"--concurrency={cfg.celery_worker_concurrency}"],
            "env": _dagster_env(), "envFrom": _control_plane_env_from(cfg),
            "volumeMounts": [_instance_mount(), {"name": "celery-config", "mountPath": "/opt/dagster/celery"}],
        }],
        "volumes": [_instance_volume(), {"name": "celery-config", "configMap": {"name": names.CELERY_CONFIG_MAP}}],
    }
    return [
        objects.config_map(names.CELERY_CONFIG_MAP, cfg.namespace, names.CELERY_COMPONENT,
                           {"celery.yaml": yaml.safe_dump(celery_config(cfg), sort_keys=False)}),
        objects.deployment(names.CELERY_WORKERS, cfg.namespace, names.CELERY_COMPONENT, pod,
                           replicas=cfg.celery_worker_replicas, annotations=_pod_annotations(cfg)),
    ]


COMPUTE_LOG_CLEANER = "dkc-clear-compute-logs"


def compute_log_cleaner(cfg: DeploymentSettings) -> Manifest:
    """A pod that removes this deployment's compute logs from the node (a pod works on every provider)."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": objects.meta(COMPUTE_LOG_CLEANER, cfg.namespace, "cleanup"),
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "clear", "image": cfg.images.dagster, "imagePullPolicy": cfg.image_pull_policy,
                            "command": ["rm", "-rf", f"/node-dir/{cfg.namespace}"],
                            "volumeMounts": [{"name": "node-dir", "mountPath": "/node-dir"}]}],
            "volumes": [{"name": "node-dir",
                         "hostPath": {"path": cfg.compute_log_host_dir, "type": "DirectoryOrCreate"}}],
        },
    }


def all_manifests(cfg: DeploymentSettings) -> dict[str, list[Manifest]]:
    """Every object, grouped in bring-up order: storage first, then code, then the control plane."""
    groups = {"foundation": foundation(cfg), "postgresql": postgres(cfg), "broker": broker(cfg),
              "object store": object_store.manifests(cfg) if cfg.images.object_store else []}
    for location in cfg.code_locations:
        groups[f"code location {location.name}"] = code_location(cfg, location)
    groups["webserver"] = webserver(cfg)
    groups["daemon"] = daemon(cfg)
    groups["celery workers"] = celery_workers(cfg)
    return {name: docs for name, docs in groups.items() if docs}
