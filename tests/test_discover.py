"""Self-tests for deploy.discover and deploy.sample_location: no cluster.

The fake namespace holds kubernetes client model objects shaped like what the official Dagster Helm chart renders
(release ``dagster``): the webserver runs ``bash -c "dagster-webserver ..."``, code locations run
``dagster api grpc ... -f <file>`` as args, the instance ConfigMap carries no component label, Celery workers are
one Deployment per queue whose pods lack the component label.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.rest import ApiException

from deploy import discover as d
from deploy import manifests, sample_location
from deploy import settings as s
from deploy.settings import CodeLocation, DeploymentSettings, Images, ObjectNames

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


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Cluster:
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


# --- settings stay backward compatible -----------------------------------------------------------------------------

def test_object_names_default_to_what_we_deploy() -> None:
    names = ObjectNames()
    assert (names.webserver, names.webserver_service, names.webserver_port) == (s.WEBSERVER, s.WEBSERVER,
                                                                                s.WEBSERVER_PORT)
    assert (names.daemon, names.instance_config_map, names.celery_workers) == (s.DAEMON, s.INSTANCE_CONFIG_MAP,
                                                                               s.CELERY_WORKERS)


def test_code_location_service_is_the_found_deployment_when_set() -> None:
    ours = CodeLocation(name="alpha", image="i:1", python_file="/f.py")
    assert ours.service == f"{s.RELEASE}-dagster-user-deployments-alpha"
    assert replace(ours, deployment_name="theirs-alpha").service == "theirs-alpha"


def test_broker_image_is_required_only_for_a_deployment_we_own() -> None:
    images = Images(dagster="d:1", postgres="")
    with pytest.raises(ValueError, match="broker image"):
        DeploymentSettings(combination="celery-k8s", namespace=NS, images=images, code_locations=())
    theirs = DeploymentSettings(combination="celery-k8s", namespace=NS, images=images, code_locations=(), owned=False)
    assert theirs.names == ObjectNames() and not theirs.owned


# --- a chart-shaped K8sRunLauncher deployment ----------------------------------------------------------------------

def test_finds_the_parts_of_a_chart_deployment_by_label(cluster: Cluster) -> None:
    found = discover_in(cluster)
    assert found.names == ObjectNames(webserver="dagster-webserver", webserver_service="dagster-webserver",
                                      webserver_port=80, daemon="dagster-daemon",
                                      instance_config_map="dagster-instance", celery_workers=None)
    assert found.dagster_image == DAGSTER_IMAGE
    assert found.webserver_replicas == 2
    assert (found.celery_worker_replicas, found.celery_worker_concurrency) == (None, None)


def test_reads_the_instance_settings_back(cluster: Cluster) -> None:
    instance = discover_in(cluster).instance
    assert (instance.run_launcher_module, instance.run_launcher_class) == ("dagster_k8s", "K8sRunLauncher")
    assert instance.run_k8s_config == {"container_config": {"resources": {"requests": {"cpu": "10m",
                                                                                       "memory": "64Mi"}}},
                                       "pod_spec_config": {"node_selector": {"env": "RUN_NODE_SELECTOR"}}}
    assert (instance.run_monitoring, instance.run_monitoring_poll_interval_seconds,
            instance.max_resume_run_attempts) == (True, 30, 0)
    assert (instance.run_retries, instance.max_retries) == (True, 2)
    assert (instance.run_coordinator_class, instance.dequeue_interval_seconds) == ("QueuedRunCoordinator", 2)


def test_code_locations_come_with_their_file_env_and_env_from(cluster: Cluster) -> None:
    found = discover_in(cluster)
    assert [loc.name for loc in found.code_locations] == ["alpha", "beta"]
    assert [loc.name for loc in found.other_locations] == ["etl"]
    alpha = found.code_locations[0]
    assert alpha.image == "example.test/dkc/alpha:1"
    assert alpha.python_file == "/opt/dagster/app/alpha/definitions.py"
    assert alpha.env == (("DKC_PLAIN", "plain-value"),), "literal, non-DAGSTER_* env only"
    assert alpha.env_config_maps == ("dagster-dagster-user-deployments-user-deployments-shared-env",
                                     "dagster-dagster-user-deployments-alpha-user-env", "dkc-test-env")
    assert alpha.env_secrets == ("dkc-test-secret",)
    assert alpha.deployment_name == alpha.service == "dagster-dagster-user-deployments-alpha"
    assert found.other_locations[0].python_file == "", "no -f: the location loads a module or a workspace"


def test_reads_the_secret_values_to_search_for_leaks(cluster: Cluster) -> None:
    found = discover_in(cluster)
    assert (found.postgres_password, found.test_secret_value) == (PG_PASSWORD, TEST_SECRET)
    assert PG_PASSWORD not in repr(found) and TEST_SECRET not in repr(found)


def test_unreadable_secrets_are_unknown_not_an_error(cluster: Cluster) -> None:
    ns = k8s_namespace()
    ns.forbidden_secrets = True
    found = discover_in(cluster, ns)
    assert (found.postgres_password, found.test_secret_value) == (None, None)
    settings = d.settings_for(found, "k8s-job")
    assert (settings.postgres_password, settings.test_secret_value) == ("", "")


def test_a_namespace_it_may_not_read_is_no_obstacle(cluster: Cluster) -> None:
    ns = k8s_namespace()
    ns.namespace_status = 403
    assert discover_in(cluster, ns).names.webserver == "dagster-webserver"


def test_selectors_and_instance_name_can_be_overridden(cluster: Cluster) -> None:
    ns = k8s_namespace()
    ns.deployments[0] = webserver(component="ui")
    ns.services[2] = service("dagster-webserver", {**CHART_LABELS, "component": "ui"}, 8080)
    ns.config_maps.append(config_map("spare", {"dagster.yaml": "run_launcher: {class: K8sRunLauncher}\n"}))
    found = discover_in(cluster, ns, selectors=d.Selectors(webserver="component=ui", instance_config_map="spare"))
    assert (found.names.webserver, found.names.webserver_port, found.names.instance_config_map) == (
        "dagster-webserver", 8080, "spare")


def test_instance_config_map_mounted_by_the_webserver_wins(cluster: Cluster) -> None:
    ns = k8s_namespace()
    ns.config_maps.insert(0, config_map("backup-instance", {"dagster.yaml": "{}\n"}))
    assert discover_in(cluster, ns).names.instance_config_map == "dagster-instance"


# --- a chart-shaped CeleryK8sRunLauncher deployment -----------------------------------------------------------------

def test_celery_workers_of_the_default_queue_and_their_concurrency(cluster: Cluster) -> None:
    found = discover_in(cluster, celery_namespace())
    assert found.instance.run_launcher_class == "CeleryK8sRunLauncher"
    assert found.names.celery_workers == "dagster-celery-workers-dagster"
    assert (found.celery_worker_replicas, found.celery_worker_concurrency) == (3, 4)
    # poll_interval_seconds is an env reference: unknown here, so Dagster's default; the rest is left out.
    assert (found.instance.run_monitoring, found.instance.run_monitoring_poll_interval_seconds) == (True, 120)
    assert (found.instance.run_retries, found.instance.max_retries) == (False, 0)
    assert (found.instance.run_coordinator_class, found.instance.dequeue_interval_seconds) == (
        "QueuedRunCoordinator", 5)


@pytest.mark.parametrize(("words", "expected"), [
    (["--concurrency=3"], 3), (["--concurrency", "3"], 3), (["-c", "3"], 3), ([], None),
    (["--loglevel", "INFO"], None),
])
def test_concurrency_from_the_worker_command_line(words: list[str], expected: int | None) -> None:
    args = ["worker", "start", "-A", "dagster_celery_k8s.app", "-q", "dagster", *(["--", *words] if words else [])]
    assert d.concurrency(k8s.V1Container(name="w", command=["dagster-celery"], args=args)) == expected


def test_concurrency_inside_a_shell_script() -> None:
    script = "dagster-celery worker start -A dagster_celery_k8s.app -- -c 6"
    assert d.concurrency(k8s.V1Container(name="w", command=["/bin/sh", "-c", script])) == 6


def test_celery_settings_keep_the_defaults_where_the_cluster_does_not_say(cluster: Cluster) -> None:
    settings = d.settings_for(discover_in(cluster, celery_namespace(extra_args=[])), "celery-k8s")
    assert settings.celery_worker_replicas == 3
    assert settings.celery_worker_concurrency == DeploymentSettings.__dataclass_fields__[
        "celery_worker_concurrency"].default
    assert settings.images.broker is None and not settings.owned


# --- what is missing says so, in one line --------------------------------------------------------------------------

def test_missing_namespace(cluster: Cluster) -> None:
    ns = k8s_namespace()
    ns.exists = False
    assert error(cluster, ns).startswith(f"namespace {NS} does not exist")


def test_missing_webserver_names_the_selector_and_the_option(cluster: Cluster) -> None:
    ns = k8s_namespace()
    del ns.deployments[0]
    assert error(cluster, ns) == (f"namespace {NS} has no Dagster webserver: no Deployment matches "
                                  "component=dagster-webserver (pass --webserver-selector if yours is labelled "
                                  "differently)")


def test_missing_daemon(cluster: Cluster) -> None:
    ns = k8s_namespace()
    del ns.deployments[1]
    assert "has no Dagster daemon" in error(cluster, ns)


def test_two_webservers_are_ambiguous(cluster: Cluster) -> None:
    ns = k8s_namespace()
    other = webserver()
    other.metadata.name = "other-webserver"
    ns.deployments.append(other)
    assert "several Dagster webservers (dagster-webserver, other-webserver)" in error(cluster, ns)


def test_webserver_without_a_service(cluster: Cluster) -> None:
    ns = k8s_namespace()
    del ns.services[2]
    assert "no Service selecting the pods of the webserver Deployment dagster-webserver" in error(cluster, ns)


def test_missing_instance_config_map(cluster: Cluster) -> None:
    ns = k8s_namespace()
    del ns.config_maps[0]
    assert error(cluster, ns) == (f"no instance ConfigMap with a dagster.yaml key in {NS} "
                                  "(pass --instance-config-map)")


def test_named_instance_config_map_that_does_not_exist(cluster: Cluster) -> None:
    message = error(cluster, k8s_namespace(), selectors=d.Selectors(instance_config_map="nope"))
    assert message == f"ConfigMap nope does not exist in {NS} (check --instance-config-map)"


def test_missing_sample_location(cluster: Cluster) -> None:
    ns = k8s_namespace()
    ns.deployments = [dep for dep in ns.deployments if dep.metadata.labels.get("deployment") != "alpha"]
    assert error(cluster, ns) == (f"the suite's sample code location alpha is not deployed in {NS} (looked for "
                                  "Deployments matching component=user-deployments): add it with the Helm values "
                                  "printed by `./dkc sample-location`")


def test_celery_launcher_without_workers(cluster: Cluster) -> None:
    ns = celery_namespace()
    ns.deployments = [dep for dep in ns.deployments if dep.metadata.labels["component"] != "celery"]
    assert "runs the CeleryK8sRunLauncher but has no Celery workers" in error(cluster, ns)


# --- round trip: what we deploy, discovered, is what we deployed -------------------------------------------------

@dataclass
class Body:
    data: str


def as_model(doc: dict[str, Any]) -> Any:
    if doc["kind"] == "Secret":  # the apiserver stores stringData base64-encoded under data
        doc = {**doc, "data": {k: base64.b64encode(v.encode()).decode() for k, v in doc["stringData"].items()}}
    return k8s.ApiClient().deserialize(Body(json.dumps(doc)), f"V1{doc['kind']}")


def namespace_of(cfg: DeploymentSettings) -> FakeNamespace:
    docs = [as_model(doc) for group in manifests.all_manifests(cfg).values() for doc in group]
    return FakeNamespace(deployments=[m for m in docs if isinstance(m, k8s.V1Deployment)],
                         services=[m for m in docs if isinstance(m, k8s.V1Service)],
                         config_maps=[m for m in docs if isinstance(m, k8s.V1ConfigMap)],
                         secrets=[m for m in docs if isinstance(m, k8s.V1Secret)])


@pytest.mark.parametrize("combination", s.COMBINATIONS)
def test_our_own_deployment_is_discovered_as_we_described_it(cluster: Cluster, combination: str) -> None:
    locations = tuple(CodeLocation(name=n, image=f"r/{n}:1", python_file=f"/opt/dagster/app/{n}/definitions.py",
                                   env=(s.PLAIN_ENV,), env_config_maps=(s.TEST_ENV_CONFIG_MAP,),
                                   env_secrets=(s.TEST_ENV_SECRET,)) for n in ("alpha", "beta"))
    ours = DeploymentSettings(combination=combination, namespace=NS, code_locations=locations,
                              images=Images("r/dagster:1", "r/pg:1", "r/redis:1"), webserver_replicas=2,
                              celery_worker_concurrency=3, postgres_password=PG_PASSWORD, test_secret_value=TEST_SECRET)
    found = d.settings_for(discover_in(cluster, namespace_of(ours)), combination)
    same = ("combination", "namespace", "webserver_replicas", "dequeue_interval_seconds", "run_monitoring",
            "run_monitoring_poll_interval_seconds", "max_resume_run_attempts", "run_retries", "max_retries",
            "postgres_password", "test_secret_value")
    assert {f: getattr(found, f) for f in same} == {f: getattr(ours, f) for f in same}
    if ours.uses_celery:
        assert found.names == ours.names
        assert (found.celery_worker_replicas, found.celery_worker_concurrency) == (2, 3)
    else:  # no workers to find: None, where the default names ours
        assert found.names == replace(ours.names, celery_workers=None)
        assert found.run_k8s_config == ours.run_k8s_config
    assert found.images.dagster == ours.images.dagster
    for theirs, mine in zip(found.code_locations, ours.code_locations, strict=True):
        assert (theirs.name, theirs.image, theirs.python_file, theirs.env, theirs.env_secrets, theirs.service) == (
            mine.name, mine.image, mine.python_file, mine.env, mine.env_secrets, mine.service)
        assert theirs.env_config_maps == (s.PIPELINE_ENV_CONFIG_MAP, *mine.env_config_maps)


# --- combinations and the shared description ---------------------------------------------------------------------

def test_combinations_served_follow_the_run_launcher() -> None:
    instance = d.parse_instance(K8S_INSTANCE)
    assert d.combinations_served(instance) == ("k8s-multiprocess", "k8s-job")
    assert d.combinations_served(d.parse_instance(CELERY_INSTANCE)) == ("celery-k8s",)
    assert d.combinations_served(d.parse_instance("")) == ()


@pytest.mark.parametrize("combination", ["k8s-multiprocess", "k8s-job"])
def test_settings_for_a_k8s_deployment(cluster: Cluster, combination: str) -> None:
    found = discover_in(cluster)
    settings = d.settings_for(found, combination)
    assert (settings.combination, settings.namespace, settings.owned) == (combination, NS, False)
    assert settings.names == found.names
    assert settings.images == Images(dagster=DAGSTER_IMAGE, postgres="", broker=None)
    assert [loc.name for loc in settings.code_locations] == ["alpha", "beta"], "only the suite's sample locations"
    assert settings.webserver_replicas == 2
    assert (settings.run_monitoring, settings.run_monitoring_poll_interval_seconds,
            settings.max_resume_run_attempts) == (True, 30, 0)
    assert (settings.run_retries, settings.max_retries, settings.dequeue_interval_seconds) == (True, 2, 2)
    assert settings.run_k8s_config == found.instance.run_k8s_config
    assert (settings.postgres_password, settings.test_secret_value) == (PG_PASSWORD, TEST_SECRET)
    assert PG_PASSWORD not in repr(settings)


def test_settings_for_a_combination_not_served(cluster: Cluster) -> None:
    with pytest.raises(d.DiscoveryError) as caught:
        d.settings_for(discover_in(cluster), "celery-k8s")
    assert str(caught.value) == (f"the Dagster in {NS} runs the K8sRunLauncher (dagster_k8s), which cannot run "
                                 "celery-k8s: it serves k8s-multiprocess, k8s-job")


def test_settings_for_an_unsupported_launcher(cluster: Cluster) -> None:
    found = replace(discover_in(cluster), instance=d.parse_instance("{}"))
    with pytest.raises(d.DiscoveryError, match="runs the DefaultRunLauncher \\(dagster\\), which cannot run k8s-job"):
        d.settings_for(found, "k8s-job")


def test_instance_defaults_are_dagsters() -> None:
    instance = d.parse_instance("run_monitoring: {enabled: true}\nrun_queue: {max_concurrent_runs: 3}\n")
    assert (instance.run_monitoring_poll_interval_seconds, instance.max_resume_run_attempts) == (120, 0)
    assert (instance.run_retries, instance.max_retries) == (False, 0)
    assert (instance.run_coordinator_class, instance.dequeue_interval_seconds) == ("QueuedRunCoordinator", 5)
    assert instance.run_k8s_config == {}


def test_env_references_for_numbers_are_unknown() -> None:
    instance = d.parse_instance("run_retries: {enabled: true, max_retries: {env: RETRIES}}\n"
                                "run_coordinator: {class: QueuedRunCoordinator, config: "
                                "{dequeue_interval_seconds: {env: DEQUEUE}}}\n")
    assert (instance.max_retries, instance.dequeue_interval_seconds) == (0, 5)


# --- permissions ---------------------------------------------------------------------------------------------------

def test_missing_access_asks_in_the_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[k8s.V1ResourceAttributes] = []
    denied = {("delete", "", "pods", None), ("create", "", "services", "proxy")}

    class FakeAuthz:
        def create_self_subject_access_review(self, review: Any, **_: Any) -> Any:
            attrs = review.spec.resource_attributes
            asked.append(attrs)
            allowed = (attrs.verb, attrs.group, attrs.resource, attrs.subresource) not in denied
            return k8s.V1SelfSubjectAccessReview(spec=review.spec,
                                                 status=k8s.V1SubjectAccessReviewStatus(allowed=allowed))

    monkeypatch.setattr(d.client, "AuthorizationV1Api", lambda api: FakeAuthz())
    assert d.missing_access(k8s.ApiClient(), NS, chaos=False) == [f"create services/proxy in {NS}"]
    assert {a.namespace for a in asked} == {NS}
    assert d.missing_access(k8s.ApiClient(), NS, chaos=True) == [f"create services/proxy in {NS}",
                                                                 f"delete pods in {NS}"]
    assert ("delete", "batch", "jobs") in {(a.verb, a.group, a.resource) for a in asked}


# --- the sample location for someone else's chart ------------------------------------------------------------------

def test_values_snippet_is_chart_values_for_the_sample_locations() -> None:
    text = sample_location.values_snippet([("alpha", "registry.example:5000/dkc/alpha:1.2"),
                                           ("beta", "registry.example:5000/dkc/beta:7")])
    deployments = yaml.safe_load(text)["dagster-user-deployments"]["deployments"]
    assert [dep["name"] for dep in deployments] == ["alpha", "beta"]
    alpha = deployments[0]
    assert alpha["image"] == {"repository": "registry.example:5000/dkc/alpha", "tag": "1.2",
                              "pullPolicy": "IfNotPresent"}
    assert alpha["dagsterApiGrpcArgs"] == ["-f", "/opt/dagster/app/alpha/definitions.py"]
    assert alpha["port"] == s.GRPC_PORT
    assert alpha["env"] == [{"name": s.PLAIN_ENV[0], "value": s.PLAIN_ENV[1]}]
    assert alpha["envConfigMaps"] == [{"name": s.TEST_ENV_CONFIG_MAP}]
    assert alpha["envSecrets"] == [{"name": s.TEST_ENV_SECRET}]


def test_values_snippet_python_file_matches_what_discovery_reads(cluster: Cluster) -> None:
    snippet = yaml.safe_load(sample_location.values_snippet([("alpha", "r/alpha:1"), ("beta", "r/beta:1")]))
    files = {dep["name"]: dep["dagsterApiGrpcArgs"][1] for dep in snippet["dagster-user-deployments"]["deployments"]}
    assert {loc.name: loc.python_file for loc in discover_in(cluster).code_locations} == files


@pytest.mark.parametrize("image", ["registry.example:5000/dkc/alpha", "r/alpha@sha256:abc", "alpha"])
def test_values_snippet_needs_tagged_images(image: str) -> None:
    with pytest.raises(ValueError, match="needs a tag"):
        sample_location.values_snippet([("alpha", image)])


def test_secret_commands_create_labelled_objects_with_a_fresh_secret() -> None:
    text = sample_location.secret_commands("team dagster")
    lines = text.splitlines()
    assert all(line.startswith("kubectl -n 'team dagster' ") for line in lines)
    assert "create configmap dkc-test-env --from-literal=DKC_FROM_CONFIG_MAP=from-a-config-map" in lines[0]
    assert "create secret generic dkc-test-secret --from-literal=DKC_FROM_SECRET=dkc-secret-" in lines[2]
    assert lines[1].endswith("label configmap dkc-test-env dkc.dagster.io/managed-by=dkc")
    assert lines[3].endswith("label secret dkc-test-secret dkc.dagster.io/managed-by=dkc")
    assert sample_location.secret_commands("x") != sample_location.secret_commands("x"), "a new value each time"
