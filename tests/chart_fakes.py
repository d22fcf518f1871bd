"""Fakes for the self-tests of discovery (deploy.discover) and of what is derived from it: no cluster.

The fake namespace holds kubernetes client model objects shaped like what the official Dagster Helm chart renders
(release ``dagster``): the webserver runs ``bash -c "dagster-webserver ..."``, code locations run
``dagster api grpc ... -f <file>`` as args, the instance ConfigMap carries no component label, Celery workers are
one Deployment per queue whose pods lack the component label.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from deploy import discover as d

NS = "team-dagster"
DAGSTER_IMAGE = "example.test/dagster/dagster-k8s:1.13.27"
PG_PASSWORD = "pg-s3cret-value"
TEST_SECRET = "dkc-secret-0123abcd"
CHART_LABELS = {"app.kubernetes.io/name": "dagster", "app.kubernetes.io/instance": "dagster"}

K8S_INSTANCE = """\
scheduler:
  module: dagster.core.scheduler
  class: DagsterDaemonScheduler
run_launcher:
  module: dagster_k8s
  class: K8sRunLauncher
  config:
    load_incluster_config: true
    job_namespace: team-dagster
    image_pull_policy: Always
    instance_config_map: "dagster-instance"
    postgres_password_secret: "dagster-postgresql-secret"
    run_k8s_config:
      container_config:
        resources:
          requests: {cpu: 10m, memory: 64Mi}
      pod_spec_config:
        node_selector:
          env: RUN_NODE_SELECTOR
run_storage:
  module: dagster_postgres.run_storage
  class: PostgresRunStorage
  config:
    postgres_db:
      password: {env: DAGSTER_PG_PASSWORD}
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 2
run_monitoring:
  enabled: true
  start_timeout_seconds:  300
  max_resume_run_attempts: 0
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 0
run_retries:
  enabled: true
  max_retries: 2
telemetry:
  enabled: false
"""

CELERY_INSTANCE = """\
run_launcher:
  module: dagster_celery_k8s
  class: CeleryK8sRunLauncher
  config:
    instance_config_map: "dagster-instance"
    job_namespace: team-dagster
    broker: {env: DAGSTER_CELERY_BROKER_URL}
run_monitoring:
  enabled: true
  poll_interval_seconds: {env: POLL_SECONDS}
"""


# --- chart-shaped objects ---------------------------------------------------------------------------------------

def env(name: str, value: str | None = None, secret: tuple[str, str] | None = None) -> k8s.V1EnvVar:
    value_from = (k8s.V1EnvVarSource(secret_key_ref=k8s.V1SecretKeySelector(name=secret[0], key=secret[1]))
                  if secret else None)
    return k8s.V1EnvVar(name=name, value=value, value_from=value_from)


PG_ENV = env("DAGSTER_PG_PASSWORD", secret=("dagster-postgresql-secret", "postgresql-password"))


def container(image: str = DAGSTER_IMAGE, command: list[str] | None = None, args: list[str] | None = None,
              env_vars: list[k8s.V1EnvVar] | None = None, config_maps: tuple[str, ...] = (),
              secrets: tuple[str, ...] = ()) -> k8s.V1Container:
    env_from = [k8s.V1EnvFromSource(config_map_ref=k8s.V1ConfigMapEnvSource(name=n)) for n in config_maps]
    env_from += [k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=n)) for n in secrets]
    return k8s.V1Container(name="dagster", image=image, command=command, args=args, env=env_vars,
                           env_from=env_from or None)


def deployment(name: str, component: str, containers: list[k8s.V1Container], replicas: int | None = 1,
               pod_component: bool = True, config_map_volumes: tuple[str, ...] = (),
               **extra: str) -> k8s.V1Deployment:
    labels = {**CHART_LABELS, "component": component, **extra}
    pod_labels = labels if pod_component else dict(CHART_LABELS)
    volumes = [k8s.V1Volume(name=f"v{i}", config_map=k8s.V1ConfigMapVolumeSource(name=cm))
               for i, cm in enumerate(config_map_volumes)]
    return k8s.V1Deployment(
        metadata=k8s.V1ObjectMeta(name=name, namespace=NS, labels=labels),
        spec=k8s.V1DeploymentSpec(
            replicas=replicas, selector=k8s.V1LabelSelector(match_labels=pod_labels),
            template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=pod_labels),
                                           spec=k8s.V1PodSpec(containers=containers, volumes=volumes or None))))


def service(name: str, selector: dict[str, str], port: int, port_name: str = "http") -> k8s.V1Service:
    return k8s.V1Service(metadata=k8s.V1ObjectMeta(name=name, namespace=NS),
                         spec=k8s.V1ServiceSpec(selector=selector, ports=[k8s.V1ServicePort(name=port_name,
                                                                                            port=port)]))


def config_map(name: str, data: dict[str, str]) -> k8s.V1ConfigMap:
    return k8s.V1ConfigMap(metadata=k8s.V1ObjectMeta(name=name, namespace=NS), data=data)


def secret(name: str, data: dict[str, str]) -> k8s.V1Secret:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}
    return k8s.V1Secret(metadata=k8s.V1ObjectMeta(name=name, namespace=NS), data=encoded)


def webserver(replicas: int = 2, component: str = "dagster-webserver") -> k8s.V1Deployment:
    script = "dagster-webserver -h 0.0.0.0 -p 80 -w /dagster-workspace/workspace.yaml"
    return deployment("dagster-webserver", component, [container(command=["/bin/bash", "-c", script],
                                                                 env_vars=[PG_ENV])],
                      replicas=replicas, config_map_volumes=("dagster-instance", "dagster-workspace-yaml"))


def user_deployment(name: str, python_file: str | None = None) -> k8s.V1Deployment:
    args = ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "3030"] + (["-f", python_file] if python_file else [])
    env_vars = [env("DAGSTER_CURRENT_IMAGE", f"example.test/dkc/{name}:1"), PG_ENV,
                env("DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT", '{"k8s": {}}'), env("DKC_PLAIN", "plain-value"),
                env("FROM_A_REF", secret=("other", "key"))]
    shared = ("dagster-dagster-user-deployments-user-deployments-shared-env",
              f"dagster-dagster-user-deployments-{name}-user-env")
    c = container(image=f"example.test/dkc/{name}:1", args=args, env_vars=env_vars,
                  config_maps=(*shared, "dkc-test-env"), secrets=("dkc-test-secret",))
    return deployment(f"dagster-dagster-user-deployments-{name}", "user-deployments", [c], deployment=name)


def celery_workers(name: str, queue: str, replicas: int, extra_args: list[str]) -> k8s.V1Deployment:
    args = ["worker", "start", "-A", "dagster_celery_k8s.app", "-y", "/opt/dagster/dagster_home/celery-config.yaml",
            "-q", queue, *(["--", *extra_args] if extra_args else [])]
    return deployment(name, "celery", [container(command=["dagster-celery"], args=args, env_vars=[PG_ENV])],
                      replicas=replicas, pod_component=False)


@dataclass
class FakeNamespace:
    """The few reads discover() makes, answered from model objects; errors as the apiserver raises them."""

    name: str = NS
    exists: bool = True
    namespace_status: int | None = None  # e.g. 403: the identity may not read Namespaces
    deployments: list[k8s.V1Deployment] = field(default_factory=list)
    services: list[k8s.V1Service] = field(default_factory=list)
    config_maps: list[k8s.V1ConfigMap] = field(default_factory=list)
    secrets: list[k8s.V1Secret] = field(default_factory=list)
    forbidden_secrets: bool = False

    def read_namespace(self, name: str, **_: Any) -> k8s.V1Namespace:
        if self.namespace_status:
            raise ApiException(status=self.namespace_status)
        if not self.exists or name != self.name:
            raise ApiException(status=404, reason="Not Found")
        return k8s.V1Namespace(metadata=k8s.V1ObjectMeta(name=name))

    def list_namespaced_deployment(self, namespace: str, label_selector: str = "", **_: Any) -> Any:
        wanted = dict(pair.split("=", 1) for pair in label_selector.split(",") if pair)
        return k8s.V1DeploymentList(items=[dep for dep in self.deployments if all(
            (dep.metadata.labels or {}).get(k) == v for k, v in wanted.items())])

    def read_namespaced_deployment(self, name: str, namespace: str, **_: Any) -> k8s.V1Deployment:
        return self._find(self.deployments, name)

    def list_namespaced_service(self, namespace: str, **_: Any) -> k8s.V1ServiceList:
        return k8s.V1ServiceList(items=self.services)

    def list_namespaced_config_map(self, namespace: str, **_: Any) -> k8s.V1ConfigMapList:
        return k8s.V1ConfigMapList(items=self.config_maps)

    def read_namespaced_config_map(self, name: str, namespace: str, **_: Any) -> k8s.V1ConfigMap:
        return self._find(self.config_maps, name)

    def read_namespaced_secret(self, name: str, namespace: str, **_: Any) -> k8s.V1Secret:
        if self.forbidden_secrets:
            raise ApiException(status=403, reason="Forbidden")
        return self._find(self.secrets, name)

    @staticmethod
    def _find(items: list[Any], name: str) -> Any:
        for item in items:
            if item.metadata.name == name:
                return item
        raise ApiException(status=404, reason="Not Found")


def k8s_namespace() -> FakeNamespace:
    return FakeNamespace(
        deployments=[webserver(), deployment("dagster-daemon", "dagster-daemon", [container(
                         command=["/bin/bash", "-c", "dagster-daemon run -w /dagster-workspace/workspace.yaml"])]),
                     user_deployment("alpha", "/opt/dagster/app/alpha/definitions.py"),
                     user_deployment("beta", "/opt/dagster/app/beta/definitions.py"),
                     user_deployment("etl")],
        services=[service("dagster-postgresql", {**CHART_LABELS, "component": "postgresql"}, 5432),
                  service("dagster-webserver-read-only",
                          {**CHART_LABELS, "component": "dagster-webserver-read-only"}, 80),
                  service("dagster-webserver", {**CHART_LABELS, "component": "dagster-webserver"}, 80),
                  service("alpha", {**CHART_LABELS, "component": "user-deployments", "deployment": "alpha"}, 3030,
                          port_name="grpc")],
        config_maps=[config_map("dagster-instance", {"dagster.yaml": K8S_INSTANCE}),
                     config_map("dagster-workspace-yaml", {"workspace.yaml": "load_from: []\n"}),
                     config_map("dkc-test-env", {"DKC_FROM_CONFIG_MAP": "from-a-config-map"})],
        secrets=[secret("dagster-postgresql-secret", {"postgresql-password": PG_PASSWORD}),
                 secret("dkc-test-secret", {"DKC_FROM_SECRET": TEST_SECRET})],
    )


def celery_namespace(extra_args: list[str] | None = None) -> FakeNamespace:
    ns = k8s_namespace()
    ns.config_maps[0] = config_map("dagster-instance", {"dagster.yaml": CELERY_INSTANCE})
    ns.deployments += [
        celery_workers("dagster-celery-workers-aaa", "aaa", 1, ["-c", "9"]),  # another queue, first by name
        celery_workers("dagster-celery-workers-dagster", "dagster", 3,
                       ["--concurrency", "4"] if extra_args is None else extra_args),
    ]
    return ns


@dataclass
class Cluster:
    """What the patched CoreV1Api and AppsV1Api answer from: a chart-shaped K8sRunLauncher namespace by default."""

    ns: FakeNamespace


def patched_cluster(monkeypatch: pytest.MonkeyPatch) -> Cluster:
    """The fake CoreV1Api and AppsV1Api discovery (and the control plane's selectors) read from; each test module
    that uses it has a ``cluster`` fixture returning this."""
    fake = Cluster(k8s_namespace())
    monkeypatch.setattr(d.client, "CoreV1Api", lambda api: fake.ns)
    monkeypatch.setattr(d.client, "AppsV1Api", lambda api: fake.ns)
    return fake


def discover_in(cluster: Cluster, ns: FakeNamespace | None = None, **kwargs: Any) -> d.DiscoveredDagster:
    cluster.ns = ns or cluster.ns
    return d.discover(k8s.ApiClient(), NS, **kwargs)


def error(cluster: Cluster, ns: FakeNamespace, **kwargs: Any) -> str:
    with pytest.raises(d.DiscoveryError) as caught:
        discover_in(cluster, ns, **kwargs)
    message = str(caught.value)
    assert "\n" not in message, f"errors are one line: {message!r}"
    return message
