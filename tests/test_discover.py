"""Self-tests for deploy.discover: a Dagster someone else deployed with the official chart, found by its labels
and described as the suites use it (no cluster; the chart-shaped fakes are tests/chart_fakes.py's)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from typing import Any

import pytest
from kubernetes import client as k8s

from deploy import access, manifests, names
from deploy import discover as d
from deploy import settings as s
from deploy.settings import CodeLocation, DeploymentSettings, Images, ObjectNames
from tests.chart_fakes import (
    CHART_LABELS,
    DAGSTER_IMAGE,
    NS,
    PG_PASSWORD,
    TEST_SECRET,
    Cluster,
    FakeNamespace,
    celery_namespace,
    config_map,
    discover_in,
    error,
    k8s_namespace,
    patched_cluster,
    service,
    webserver,
)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Cluster:
    return patched_cluster(monkeypatch)


# --- settings stay backward compatible -----------------------------------------------------------------------------

def test_object_names_default_to_what_we_deploy() -> None:
    found = ObjectNames()
    assert (found.webserver, found.webserver_service, found.webserver_port) == (names.WEBSERVER, names.WEBSERVER,
                                                                                s.WEBSERVER_PORT)
    assert (found.daemon, found.instance_config_map, found.celery_workers) == (names.DAEMON, names.INSTANCE_CONFIG_MAP,
                                                                               names.CELERY_WORKERS)


def test_code_location_service_is_the_found_deployment_when_set() -> None:
    ours = CodeLocation(name="alpha", image="i:1", python_file="/f.py")
    assert ours.service == f"{names.RELEASE}-dagster-user-deployments-alpha"
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
        assert theirs.env_config_maps == (names.PIPELINE_ENV_CONFIG_MAP, *mine.env_config_maps)


# --- the shared description ----------------------------------------------------------------------------------

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

    monkeypatch.setattr(access.client, "AuthorizationV1Api", lambda api: FakeAuthz())
    assert access.missing_access(k8s.ApiClient(), NS, chaos=False) == [f"create services/proxy in {NS}"]
    assert {a.namespace for a in asked} == {NS}
    assert access.missing_access(k8s.ApiClient(), NS, chaos=True) == [f"create services/proxy in {NS}",
                                                                 f"delete pods in {NS}"]
    assert ("delete", "batch", "jobs") in {(a.verb, a.group, a.resource) for a in asked}
