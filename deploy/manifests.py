"""The Kubernetes objects of a chart-shaped Dagster deployment, as plain dicts (no cluster needed)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from deploy import settings as s
from deploy.settings import CodeLocation, DeploymentSettings, PostgresVolume
from images.dagster import POSTGRES_ENTRYPOINT

Manifest = dict[str, Any]
DAGSTER_YAML = f"{s.DAGSTER_HOME}/dagster.yaml"
WORKSPACE_DIR = "/dagster-workspace"


def labels(component: str, **extra: str) -> dict[str, str]:
    """The chart's labels, plus ours so that teardown and evidence collection find every object."""
    return {"app.kubernetes.io/name": "dagster", "app.kubernetes.io/instance": s.RELEASE, "component": component,
            s.MANAGED_LABEL: "dkc", **extra}


def _meta(name: str, namespace: str, component: str, **extra: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(component, **extra)}


def run_launcher(cfg: DeploymentSettings) -> dict[str, Any]:
    common = {
        "instance_config_map": s.INSTANCE_CONFIG_MAP,
        "dagster_home": s.DAGSTER_HOME,
        "postgres_password_secret": s.POSTGRES_SECRET,
        "load_incluster_config": True,
        "job_namespace": cfg.namespace,
        "image_pull_policy": cfg.image_pull_policy,
        "service_account_name": s.SERVICE_ACCOUNT,
        "env_config_maps": [s.PIPELINE_ENV_CONFIG_MAP],
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


def instance_config(cfg: DeploymentSettings) -> dict[str, Any]:
    """dagster.yaml: Postgres storage (password from the Secret via env), queued runs, the launcher."""
    return {
        "storage": {"postgres": {"postgres_db": {
            "username": "dagster", "password": {"env": "DAGSTER_PG_PASSWORD"}, "hostname": s.POSTGRES,
            "db_name": "dagster", "port": 5432}}},
        "run_coordinator": {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator",
                            "config": {"dequeue_interval_seconds": cfg.dequeue_interval_seconds}},
        "run_launcher": run_launcher(cfg),
        "run_monitoring": {"enabled": cfg.run_monitoring, "start_timeout_seconds": 180,
                           "poll_interval_seconds": cfg.run_monitoring_poll_interval_seconds,
                           "max_resume_run_attempts": cfg.max_resume_run_attempts},
        "run_retries": {"enabled": cfg.run_retries, "max_retries": cfg.max_retries},
        "compute_logs": {"module": "dagster.core.storage.local_compute_log_manager", "class": "LocalComputeLogManager",
                         "config": {"base_dir": s.COMPUTE_LOG_DIR}},
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
        "service_account_name": s.USER_DEPLOYMENTS_SERVICE_ACCOUNT,
        "env_vars": [f"{k}={v}" for k, v in location.env],
        "env_config_maps": [s.PIPELINE_ENV_CONFIG_MAP, *location.env_config_maps],
        "env_secrets": list(location.env_secrets),
    }}


def _dagster_env() -> list[dict[str, Any]]:
    return [
        {"name": "DAGSTER_HOME", "value": s.DAGSTER_HOME},
        {"name": "DAGSTER_PG_PASSWORD", "valueFrom": {"secretKeyRef": {
            "name": s.POSTGRES_SECRET, "key": s.POSTGRES_PASSWORD_KEY}}},
    ]


def _instance_mount() -> dict[str, Any]:
    # Only dagster.yaml: Dagster processes write under DAGSTER_HOME, which must stay writable.
    return {"name": "dagster-instance", "mountPath": DAGSTER_YAML, "subPath": "dagster.yaml"}


def _compute_log_mount() -> dict[str, Any]:
    return {"name": "compute-logs", "mountPath": s.COMPUTE_LOG_DIR}


def _compute_log_volume(cfg: DeploymentSettings) -> dict[str, Any]:
    return {"name": "compute-logs", "hostPath": {"path": cfg.compute_log_host_path, "type": "DirectoryOrCreate"}}


def _instance_volume() -> dict[str, Any]:
    return {"name": "dagster-instance", "configMap": {"name": s.INSTANCE_CONFIG_MAP}}


def instance_checksum(cfg: DeploymentSettings) -> dict[str, str]:
    """Pod annotation that changes with dagster.yaml, so that a new instance config rolls the pods reading it."""
    digest = hashlib.sha256(yaml.safe_dump(instance_config(cfg), sort_keys=True).encode()).hexdigest()
    return {"checksum/dagster-instance": digest}


def _deployment(name: str, namespace: str, component: str, pod_spec: dict[str, Any], replicas: int = 1,
                strategy: str = "RollingUpdate", annotations: dict[str, str] | None = None, **extra: str) -> Manifest:
    selector = {"app.kubernetes.io/name": "dagster", "app.kubernetes.io/instance": s.RELEASE, "component": component,
                **extra}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, namespace, component, **extra),
        "spec": {"replicas": replicas, "strategy": {"type": strategy}, "selector": {"matchLabels": selector},
                 "template": {"metadata": {"labels": labels(component, **extra), "annotations": annotations or {}},
                              "spec": pod_spec}},
    }


def _service(name: str, namespace: str, component: str, port: int, target: int, **extra: str) -> Manifest:
    selector = {"app.kubernetes.io/name": "dagster", "app.kubernetes.io/instance": s.RELEASE, "component": component,
                **extra}
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, namespace, component, **extra),
            "spec": {"selector": selector, "ports": [{"name": "http", "port": port, "targetPort": target}]}}


def _config_map(name: str, namespace: str, component: str, data: dict[str, str]) -> Manifest:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(name, namespace, component), "data": data}


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
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, namespace, "rbac")},
        {"apiVersion": RBAC, "kind": "Role", "metadata": _meta(name, namespace, "rbac"), "rules": rules},
        {"apiVersion": RBAC, "kind": "RoleBinding", "metadata": _meta(name, namespace, "rbac"),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]},
    ]


def foundation(cfg: DeploymentSettings) -> list[Manifest]:
    """Namespace-level objects: service accounts and roles, the Postgres secret, config maps."""
    ns = cfg.namespace
    return [
        *_account(s.SERVICE_ACCOUNT, ns, CONTROL_PLANE_RULES),
        *_account(s.USER_DEPLOYMENTS_SERVICE_ACCOUNT, ns, USER_DEPLOYMENT_RULES),
        {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(s.POSTGRES_SECRET, ns, "postgresql"),
         "type": "Opaque", "stringData": {s.POSTGRES_PASSWORD_KEY: cfg.postgres_password}},
        _config_map(s.INSTANCE_CONFIG_MAP, ns, "instance",
                    {"dagster.yaml": yaml.safe_dump(instance_config(cfg), sort_keys=False)}),
        _config_map(s.WORKSPACE_CONFIG_MAP, ns, "workspace",
                    {"workspace.yaml": yaml.safe_dump(workspace_config(cfg), sort_keys=False)}),
        _config_map(s.PIPELINE_ENV_CONFIG_MAP, ns, "pipeline-env", {"DAGSTER_HOME": s.DAGSTER_HOME}),
        _config_map(s.TEST_ENV_CONFIG_MAP, ns, "test-env", {s.CONFIG_MAP_ENV[0]: s.CONFIG_MAP_ENV[1]}),
        {"apiVersion": "v1", "kind": "Secret", "metadata": _meta(s.TEST_ENV_SECRET, ns, "test-env"),
         "type": "Opaque", "stringData": {s.SECRET_ENV_NAME: cfg.test_secret_value}},
    ]


POSTGRES_DATA_MOUNT = "/var/lib/postgresql/data"
# initdb wants an empty directory: the database lives one level below the volume's root, beside the lock.
POSTGRES_PGDATA = f"{POSTGRES_DATA_MOUNT}/pgdata"
POSTGRES_DATA_CLAIM = f"{s.POSTGRES}-data"
POSTGRES_DATA_LABEL = "dkc.dagster.io/postgresql-data"  # on the PersistentVolume; value: the namespace
POSTGRES_DATA_SIZE = "1Gi"
# One PostgreSQL per data directory. A deleted pod's replacement starts while the old one still terminates, and
# two postmasters on one directory corrupt it (PID 1 in both containers: the lock file does not tell them apart).
# So the replacement waits on a lock on the volume until every process of the old one has exited. SIGTERM becomes
# a fast shutdown (SIGINT): a smart one waits for Dagster's LISTEN connections until the kubelet kills it.
POSTGRES_GUARD = f"""exec 9>>{POSTGRES_DATA_MOUNT}/dkc.lock
if ! flock -n 9; then
    echo "dkc: waiting for the previous PostgreSQL on this volume to exit"
    flock 9
fi
{POSTGRES_ENTRYPOINT} &
child=$!
trap 'kill -INT "$child" 2>/dev/null' TERM INT
while kill -0 "$child" 2>/dev/null; do wait "$child"; done
wait "$child"
"""  # a trapped signal cuts a wait short; the last wait returns the child's own exit status (the shell keeps it)


def postgres(cfg: DeploymentSettings) -> list[Manifest]:
    container: dict[str, Any] = {
        "name": "postgresql", "image": cfg.images.postgres, "imagePullPolicy": cfg.image_pull_policy,
        "env": [{"name": "POSTGRES_PASSWORD", "valueFrom": {"secretKeyRef": {
                    "name": s.POSTGRES_SECRET, "key": s.POSTGRES_PASSWORD_KEY}}},
                {"name": "POSTGRES_USER", "value": "dagster"}, {"name": "POSTGRES_DB", "value": "dagster"}],
        "ports": [{"containerPort": 5432}],
        "readinessProbe": {"tcpSocket": {"port": 5432}, "periodSeconds": 2},
    }
    pod: dict[str, Any] = {"containers": [container]}
    if cfg.postgres_volume:
        # The entrypoint runs initdb only when PGDATA holds no database, so a new pod reopens the old one.
        container["command"] = ["sh", "-c", POSTGRES_GUARD]
        container["env"].append({"name": "PGDATA", "value": POSTGRES_PGDATA})
        container["volumeMounts"] = [{"name": "data", "mountPath": POSTGRES_DATA_MOUNT}]
        pod["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": POSTGRES_DATA_CLAIM}}]
    return [*postgres_data(cfg), _deployment(s.POSTGRES, cfg.namespace, "postgresql", pod, strategy="Recreate"),
            _service(s.POSTGRES, cfg.namespace, "postgresql", 5432, 5432)]


def postgres_data(cfg: DeploymentSettings) -> list[Manifest]:
    """The PersistentVolume (a directory on one node, pinned there by node affinity) and the claim bound to it.

    Pre-bound both ways (claimRef, volumeName) with no StorageClass, so no provisioner or other claim takes it."""
    volume = cfg.postgres_volume
    if volume is None:
        return []
    access = {"accessModes": ["ReadWriteOnce"], "storageClassName": ""}
    node_affinity = {"required": {"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "kubernetes.io/hostname", "operator": "In", "values": [volume.hostname]}]}]}}
    persistent_volume = {
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": volume.name, "labels": {**labels("postgresql"), POSTGRES_DATA_LABEL: cfg.namespace}},
        "spec": {**access, "capacity": {"storage": POSTGRES_DATA_SIZE},
                 # Retain: we delete the directory ourselves (with a pod); the hostPath deleter refuses paths
                 # outside /tmp.
                 "persistentVolumeReclaimPolicy": "Retain",
                 "claimRef": {"namespace": cfg.namespace, "name": POSTGRES_DATA_CLAIM},
                 "hostPath": {"path": volume.host_path, "type": "DirectoryOrCreate"},
                 "nodeAffinity": node_affinity},
    }
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": _meta(POSTGRES_DATA_CLAIM, cfg.namespace, "postgresql"),
             "spec": {**access, "volumeName": volume.name, "resources": {"requests": {"storage": POSTGRES_DATA_SIZE}}}}
    return [persistent_volume, claim]


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
    return [_deployment(s.BROKER, cfg.namespace, "redis", pod, strategy="Recreate"),
            _service(s.BROKER, cfg.namespace, "redis", 6379, 6379)]


def code_location(cfg: DeploymentSettings, location: CodeLocation) -> list[Manifest]:
    """A user-code Deployment + Service, like the chart's dagster-user-deployments."""
    env = [
        *_dagster_env(),
        {"name": "DAGSTER_CURRENT_IMAGE", "value": location.image},
        {"name": "DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT", "value": json.dumps(container_context(cfg, location))},
        *({"name": k, "value": v} for k, v in location.env),
    ]
    env_from = [{"configMapRef": {"name": c}} for c in (s.PIPELINE_ENV_CONFIG_MAP, *location.env_config_maps)]
    env_from += [{"secretRef": {"name": name}} for name in location.env_secrets]
    pod = {
        "serviceAccountName": s.USER_DEPLOYMENTS_SERVICE_ACCOUNT,
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
    extra = {"deployment": location.name}
    return [
        _deployment(location.service, cfg.namespace, "user-deployments", pod,
                    annotations=storage_annotation(cfg), **extra),
        {**_service(location.service, cfg.namespace, "user-deployments", s.GRPC_PORT, s.GRPC_PORT, **extra)},
    ]


def _workspace_mount() -> dict[str, Any]:
    return {"name": "dagster-workspace-yaml", "mountPath": WORKSPACE_DIR}


def _workspace_volume() -> dict[str, Any]:
    return {"name": "dagster-workspace-yaml", "configMap": {"name": s.WORKSPACE_CONFIG_MAP}}


def webserver(cfg: DeploymentSettings) -> list[Manifest]:
    pod = {
        "serviceAccountName": s.SERVICE_ACCOUNT,
        "containers": [{
            "name": "dagster-webserver", "image": cfg.images.dagster, "imagePullPolicy": cfg.image_pull_policy,
            "command": ["dagster-webserver", "-h", "0.0.0.0", "-p", str(s.WEBSERVER_PORT),
                        "-w", f"{WORKSPACE_DIR}/workspace.yaml"],
            "env": _dagster_env(), "envFrom": [{"configMapRef": {"name": s.PIPELINE_ENV_CONFIG_MAP}}],
            "ports": [{"containerPort": s.WEBSERVER_PORT}],
            "volumeMounts": [_instance_mount(), _workspace_mount(), _compute_log_mount()],
            "readinessProbe": {"httpGet": {"path": "/server_info", "port": s.WEBSERVER_PORT},
                               "periodSeconds": 3, "timeoutSeconds": 3, "failureThreshold": 3},
        }],
        "volumes": [_instance_volume(), _workspace_volume(), _compute_log_volume(cfg)],
    }
    return [_deployment(s.WEBSERVER, cfg.namespace, "dagster-webserver", pod, replicas=cfg.webserver_replicas,
                        annotations=_pod_annotations(cfg)),
            _service(s.WEBSERVER, cfg.namespace, "dagster-webserver", s.WEBSERVER_PORT, s.WEBSERVER_PORT)]


def daemon(cfg: DeploymentSettings) -> list[Manifest]:
    pod = {
        "serviceAccountName": s.SERVICE_ACCOUNT,
        "containers": [{
            "name": "dagster-daemon", "image": cfg.images.dagster, "imagePullPolicy": cfg.image_pull_policy,
            "command": ["dagster-daemon", "run", "-w", f"{WORKSPACE_DIR}/workspace.yaml"],
            "env": _dagster_env(), "envFrom": [{"configMapRef": {"name": s.PIPELINE_ENV_CONFIG_MAP}}],
            "volumeMounts": [_instance_mount(), _workspace_mount()],
            "livenessProbe": {"exec": {"command": ["dagster-daemon", "liveness-check"]},
                              "initialDelaySeconds": 240, "periodSeconds": 30, "timeoutSeconds": 30,
                              "failureThreshold": 3},
        }],
        "volumes": [_instance_volume(), _workspace_volume()],
    }
    # One daemon at a time: Recreate never runs the old and the new side by side.
    return [_deployment(s.DAEMON, cfg.namespace, "dagster-daemon", pod, strategy="Recreate",
                        annotations=_pod_annotations(cfg))]


def celery_config(cfg: DeploymentSettings) -> dict[str, Any]:
    return {"execution": {"celery": {"broker": cfg.broker_url, "backend": cfg.backend_url}}}


def celery_workers(cfg: DeploymentSettings) -> list[Manifest]:
    if not cfg.uses_celery:
        return []
    pod = {
        "serviceAccountName": s.SERVICE_ACCOUNT,
        "containers": [{
            "name": "dagster-celery", "image": cfg.images.dagster, "imagePullPolicy": cfg.image_pull_policy,
            "command": ["dagster-celery", "worker", "start", "-A", "dagster_celery_k8s.app",
                        "-y", "/opt/dagster/celery/celery.yaml", "-q", s.CELERY_QUEUE,
                        "--", f"--concurrency={cfg.celery_worker_concurrency}"],
            "env": _dagster_env(), "envFrom": [{"configMapRef": {"name": s.PIPELINE_ENV_CONFIG_MAP}}],
            "volumeMounts": [_instance_mount(), {"name": "celery-config", "mountPath": "/opt/dagster/celery"}],
        }],
        "volumes": [_instance_volume(), {"name": "celery-config", "configMap": {"name": s.CELERY_CONFIG_MAP}}],
    }
    return [
        _config_map(s.CELERY_CONFIG_MAP, cfg.namespace, "celery",
                    {"celery.yaml": yaml.safe_dump(celery_config(cfg), sort_keys=False)}),
        _deployment(s.CELERY_WORKERS, cfg.namespace, "celery", pod, replicas=cfg.celery_worker_replicas,
                    annotations=_pod_annotations(cfg)),
    ]


COMPUTE_LOG_CLEANER = "dkc-clear-compute-logs"


def compute_log_cleaner(cfg: DeploymentSettings) -> Manifest:
    """A pod that removes this deployment's compute logs from the node (a pod works on every provider)."""
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": _meta(COMPUTE_LOG_CLEANER, cfg.namespace, "cleanup"),
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "clear", "image": cfg.images.dagster, "imagePullPolicy": cfg.image_pull_policy,
                            "command": ["rm", "-rf", f"/node-dir/{cfg.namespace}"],
                            "volumeMounts": [{"name": "node-dir", "mountPath": "/node-dir"}]}],
            "volumes": [{"name": "node-dir",
                         "hostPath": {"path": cfg.compute_log_host_dir, "type": "DirectoryOrCreate"}}],
        },
    }


def postgres_data_cleaner(cfg: DeploymentSettings, volume: PostgresVolume) -> Manifest:
    """A pod on the volume's node that removes PostgreSQL's data directory (mounting its parent removes the
    directory itself, not only what is in it)."""
    parent, _, leaf = volume.host_path.rstrip("/").rpartition("/")
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": _meta(f"dkc-clear-{volume.name}"[:63], cfg.namespace, "cleanup"),
        "spec": {
            "restartPolicy": "Never", "nodeSelector": {"kubernetes.io/hostname": volume.hostname},
            "containers": [{"name": "clear", "image": cfg.images.postgres, "imagePullPolicy": cfg.image_pull_policy,
                            "command": ["rm", "-rf", f"/node-dir/{leaf}"],
                            "volumeMounts": [{"name": "node-dir", "mountPath": "/node-dir"}]}],
            "volumes": [{"name": "node-dir", "hostPath": {"path": parent, "type": "DirectoryOrCreate"}}],
        },
    }


def all_manifests(cfg: DeploymentSettings) -> dict[str, list[Manifest]]:
    """Every object, grouped in bring-up order: storage first, then code, then the control plane."""
    groups = {"foundation": foundation(cfg), "postgresql": postgres(cfg), "broker": broker(cfg)}
    for location in cfg.code_locations:
        groups[f"code location {location.name}"] = code_location(cfg, location)
    groups["webserver"] = webserver(cfg)
    groups["daemon"] = daemon(cfg)
    groups["celery workers"] = celery_workers(cfg)
    return {name: docs for name, docs in groups.items() if docs}
