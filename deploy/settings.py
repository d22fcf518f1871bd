"""What a Dagster deployment is made of: one description shared by deploying and by the suites.

Names and labels mirror the official Helm chart (release ``dagster``, spelled in deploy/names.py), so chaos
selectors and lookups are the ones a user would write against a chart-installed Dagster.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deploy import names

COMBINATIONS = ("k8s-multiprocess", "k8s-job", "celery-k8s")
DAGSTER_HOME = "/opt/dagster/dagster_home"
COMPUTE_LOG_DIR = "/opt/dagster/compute-logs"
GRPC_PORT = 3030
WEBSERVER_PORT = 80
MANAGED_LABEL = "dkc.dagster.io/managed-by"

CELERY_QUEUE = "dagster"
# What the suite sets on its code locations to follow env vars into run, step and external pods (C10).
TEST_ENV_CONFIG_MAP = "dkc-test-env"
TEST_ENV_SECRET = "dkc-test-secret"
PLAIN_ENV = ("DKC_PLAIN", "plain-value")
# Set on each sample location to its own name (C31: one location's env never reaches another's pods).
LOCATION_ENV = "DKC_LOCATION_ENV"
CONFIG_MAP_ENV = ("DKC_FROM_CONFIG_MAP", "from-a-config-map")
SECRET_ENV_NAME = "DKC_FROM_SECRET"
# Each sample location also passes a Secret of its own, under one key (C31: secrets never cross locations).
LOCATION_SECRET_ENV = "DKC_LOCATION_SECRET"


def location_secret(location: str) -> str:
    """The Secret only code location ``location`` passes to its runs."""
    return f"dkc-location-secret-{location}"


def location_secret_value(test_secret_value: str, location: str) -> str:
    """That Secret's value: derived from the deployment's test secret, so it is as unknown outside the suite and
    differs per location (the suite reads it back from the cluster when it checks, whoever made it)."""
    digest = hmac.new(test_secret_value.encode(), location.encode(), hashlib.sha256).hexdigest()
    return f"dkc-location-secret-{digest[:24]}"


def validate_combination(name: str) -> str:
    if name not in COMBINATIONS:
        raise ValueError(f"unknown combination {name!r}: choose one of {', '.join(COMBINATIONS)}")
    return name


@dataclass(frozen=True)
class CodeLocation:
    """A code location server: its image, the file it loads, and what it passes to launched runs."""

    name: str
    image: str
    python_file: str
    env: tuple[tuple[str, str], ...] = ()
    env_config_maps: tuple[str, ...] = ()
    env_secrets: tuple[str, ...] = ()
    # The Deployment's name when someone else deployed it (found by label); None: the name we give it.
    deployment_name: str | None = None

    @property
    def service(self) -> str:
        """The Deployment (and, when we deploy it, the Service) serving this location."""
        return self.deployment_name or names.user_deployment(self.name)


# The instance's defaults for run pods (K8sRunLauncher run_k8s_config): small requests so that many pods fit
# on one node, and a node selector every node satisfies. C9 checks they reach run and step pods.
INSTANCE_RUN_K8S_CONFIG: dict[str, Any] = {
    "container_config": {"resources": {"requests": {"cpu": "10m", "memory": "64Mi"}, "limits": {"memory": "2Gi"}}},
    "pod_spec_config": {"node_selector": {"kubernetes.io/os": "linux"}},
}


def run_k8s_config_for(run_node_label: str | None) -> dict[str, Any]:
    """The instance's run_k8s_config; on a cluster with a node labelled ``run_node_label`` (more than one node),
    its node selector names that label, so C9 sees run pods land there and only there."""
    config = {key: dict(value) for key, value in INSTANCE_RUN_K8S_CONFIG.items()}
    if run_node_label:
        config["pod_spec_config"] = {"node_selector": {run_node_label: "true"}}
    return config


@dataclass(frozen=True)
class ObjectNames:
    """The objects the suites address by name: ours by default, found by label in someone else's deployment."""

    webserver: str = names.WEBSERVER  # the Deployment
    webserver_service: str = names.WEBSERVER
    webserver_port: int = WEBSERVER_PORT
    daemon: str = names.DAEMON
    instance_config_map: str = names.INSTANCE_CONFIG_MAP
    celery_workers: str | None = names.CELERY_WORKERS


@dataclass(frozen=True)
class PostgresVolume:
    """Where PostgreSQL keeps its data: a node directory behind a PersistentVolume (see deploy/postgres_storage.py)."""

    name: str  # the PersistentVolume (cluster-scoped)
    hostname: str  # the node's kubernetes.io/hostname label: the PV's node affinity, and where the cleaner runs
    host_path: str  # on that node; unique per volume, so a new volume never finds an earlier database


@dataclass(frozen=True)
class HelmChart:
    """A deployment installed with a Helm chart (the official one): reconfigured by helm upgrade, removed by
    helm uninstall (deploy/helm_deploy.py)."""

    chart: Path
    values_file: Path | None = None  # the user's values, applied after the suite's
    busybox_image: str = ""  # runs the chart's `nslookup` init containers (the suite's busybox image)


@dataclass(frozen=True)
class Images:
    dagster: str
    postgres: str
    broker: str | None = None
    # An S3-compatible store for compute logs (deploy/object_store.py), on clusters of several nodes; None: the
    # node directory below.
    object_store: str | None = None


@dataclass(frozen=True)
class DeploymentSettings:
    """Everything that decides what gets deployed for one launcher/executor combination."""

    combination: str
    namespace: str
    images: Images
    code_locations: tuple[CodeLocation, ...]
    webserver_replicas: int = 1
    celery_worker_replicas: int = 2
    celery_worker_concurrency: int = 1
    dequeue_interval_seconds: int = 1
    # The run queue's tag_concurrency_limits as (key, value, limit): how a claim keeps a run QUEUED (C24)
    tag_concurrency_limits: tuple[tuple[str, str, int], ...] = ()
    run_monitoring: bool = True
    run_monitoring_poll_interval_seconds: int = 5
    # Dagster's default is 180 s: a run that cannot start (C18) is failed sooner; a run pod on a loaded 2-core
    # node still starts well within it.
    run_monitoring_start_timeout_seconds: int = 120
    run_monitoring_cancel_timeout_seconds: int = 180  # Dagster's default
    run_monitoring_max_runtime_seconds: int = 0  # Dagster's default: no instance-wide limit (a run tag may set one)
    max_resume_run_attempts: int = 0
    run_retries: bool = True
    max_retries: int = 0
    image_pull_policy: str = "Never"  # images are loaded into the nodes, never pulled
    # Compute logs (op stdout/stderr) go to a node directory shared by run/step pods and the webserver, so
    # the webserver can show them: one node, no object store needed. <dir>/<namespace> is used.
    compute_log_host_dir: str = "/var/tmp/dagster-k8s-conformance/compute-logs"
    run_k8s_config: dict[str, Any] = field(default_factory=lambda: dict(INSTANCE_RUN_K8S_CONFIG))
    postgres_password: str = field(default="", repr=False)  # never in a repr (tracebacks reach reports)
    # The value of DKC_FROM_SECRET: known, so the suite can search for leaks; never in a repr either.
    test_secret_value: str = field(default="", repr=False)
    names: ObjectNames = field(default_factory=ObjectNames)
    # Set by deploy() from the cluster; None only for manifests rendered without one (data in the container).
    postgres_volume: PostgresVolume | None = None
    # False: someone else's deployment, which the suite must never reconfigure or delete.
    owned: bool = True
    helm: HelmChart | None = None  # None: deployed from the suite's own manifests

    def __post_init__(self) -> None:
        validate_combination(self.combination)
        if self.owned and self.uses_celery and not self.images.broker:
            raise ValueError("the celery-k8s combination needs a broker image")

    @property
    def uses_celery(self) -> bool:
        return self.combination == "celery-k8s"

    @property
    def compute_log_host_path(self) -> str:
        return f"{self.compute_log_host_dir}/{self.namespace}"

    @property
    def broker_url(self) -> str:
        return f"redis://{names.BROKER}:6379/0"

    @property
    def backend_url(self) -> str:
        return f"redis://{names.BROKER}:6379/1"
