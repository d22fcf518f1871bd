"""Self-tests: the deployment mirrors the chart's shape, per launcher/executor combination."""

from __future__ import annotations

import json

import pytest
import yaml

from deploy import manifests, names, object_store
from deploy import settings as s
from deploy.settings import CodeLocation, DeploymentSettings, Images

LOCATION = CodeLocation(name="alpha", image="docker.io/local/alpha:1", python_file="/opt/dagster/app/alpha/d.py",
                        env=(("PLAIN", "x"),), env_config_maps=("cm",), env_secrets=("sec",))


def make(combination: str, **overrides) -> DeploymentSettings:
    images = Images(dagster="docker.io/local/dagster:1", postgres="docker.io/local/postgres:1",
                    broker="docker.io/local/redis:1")
    return DeploymentSettings(combination=combination, namespace="ns", images=images, code_locations=(LOCATION,),
                              postgres_password="p4ss-w0rd", **overrides)


def by_kind(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def everything(cfg: DeploymentSettings) -> list[dict]:
    return [d for group in manifests.all_manifests(cfg).values() for d in group]


@pytest.mark.parametrize(("combination", "launcher"), [
    ("k8s-multiprocess", "K8sRunLauncher"), ("k8s-job", "K8sRunLauncher"), ("celery-k8s", "CeleryK8sRunLauncher")])
def test_instance_uses_the_combinations_run_launcher(combination: str, launcher: str) -> None:
    instance = manifests.instance_config(make(combination))
    assert instance["run_launcher"]["class"] == launcher
    assert instance["run_coordinator"]["class"] == "QueuedRunCoordinator"
    assert instance["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}
    assert instance["run_launcher"]["config"]["job_namespace"] == "ns"


def test_celery_brings_a_broker_and_workers_others_do_not() -> None:
    celery = everything(make("celery-k8s", celery_worker_replicas=3, celery_worker_concurrency=2))
    workers = next(d for d in by_kind(celery, "Deployment") if d["metadata"]["name"] == names.CELERY_WORKERS)
    assert workers["spec"]["replicas"] == 3
    assert "--concurrency=2" in workers["spec"]["template"]["spec"]["containers"][0]["command"]
    assert any(d["metadata"]["name"] == names.BROKER for d in by_kind(celery, "Deployment"))
    plain = everything(make("k8s-job"))
    assert not any(d["metadata"]["name"] in (names.BROKER, names.CELERY_WORKERS) for d in plain)


def test_components_carry_the_charts_labels() -> None:
    docs = by_kind(everything(make("k8s-job", webserver_replicas=2)), "Deployment")
    components = {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]["component"] for d in docs}
    assert components[names.WEBSERVER] == "dagster-webserver"
    assert components[names.DAEMON] == "dagster-daemon"
    user = next(d for d in docs if d["metadata"]["name"] == LOCATION.service)
    assert user["spec"]["template"]["metadata"]["labels"]["deployment"] == "alpha"
    webserver = next(d for d in docs if d["metadata"]["name"] == names.WEBSERVER)
    assert webserver["spec"]["replicas"] == 2
    daemon = next(d for d in docs if d["metadata"]["name"] == names.DAEMON)
    assert daemon["spec"]["strategy"]["type"] == "Recreate" and daemon["spec"]["replicas"] == 1


def test_code_location_passes_its_container_context_and_image() -> None:
    deployment = manifests.code_location(make("k8s-job"), LOCATION)[0]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["DAGSTER_CURRENT_IMAGE"] == LOCATION.image
    context = json.loads(env["DAGSTER_CLI_API_GRPC_CONTAINER_CONTEXT"])["k8s"]
    assert context["env_vars"] == ["PLAIN=x"]
    assert "cm" in context["env_config_maps"] and context["env_secrets"] == ["sec"]
    assert container["readinessProbe"]["grpc"] == {"port": s.GRPC_PORT, "service": "DagsterApi"}


def test_the_postgres_password_is_only_in_its_secret() -> None:
    cfg = make("celery-k8s")
    for doc in everything(cfg):
        if doc["kind"] == "Secret":
            continue
        assert cfg.postgres_password not in yaml.safe_dump(doc), f"{doc['kind']}/{doc['metadata']['name']} has it"


def test_instance_config_map_mounts_only_dagster_yaml() -> None:
    for doc in by_kind(everything(make("celery-k8s")), "Deployment"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            for mount in container.get("volumeMounts", []):
                if mount["name"] == "dagster-instance":
                    assert mount.get("subPath") == "dagster.yaml", "DAGSTER_HOME must stay writable"


def test_unknown_combination_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown combination 'k8s-celery'"):
        make("k8s-celery")


def with_store(combination: str) -> DeploymentSettings:
    images = Images(dagster="docker.io/local/dagster:1", postgres="docker.io/local/postgres:1",
                    broker="docker.io/local/redis:1", object_store="docker.io/local/gofakes3:v1")
    return DeploymentSettings(combination=combination, namespace="ns", images=images, code_locations=(LOCATION,),
                              postgres_password="p4ss-w0rd")


def test_compute_logs_stay_on_the_node_without_an_object_store() -> None:
    cfg = make("k8s-job")
    instance = manifests.instance_config(cfg)
    assert instance["compute_logs"]["class"] == "LocalComputeLogManager"
    assert "env_secrets" not in instance["run_launcher"]["config"]
    assert not [d for d in everything(cfg) if d["metadata"]["name"].startswith(object_store.NAME)]


@pytest.mark.parametrize("combination", ["k8s-job", "celery-k8s"])
def test_with_an_object_store_every_dagster_pod_can_reach_the_compute_logs(combination: str) -> None:
    cfg = with_store(combination)
    instance = manifests.instance_config(cfg)
    logs = instance["compute_logs"]
    assert logs["class"] == "S3ComputeLogManager"
    assert logs["config"]["endpoint_url"] == f"http://{object_store.NAME}.ns.svc:{object_store.PORT}"
    assert logs["config"]["bucket"] == object_store.BUCKET
    # run pods, and the step pods that take the launcher's config, sign their requests with the Secret's pair
    assert instance["run_launcher"]["config"]["env_secrets"] == [object_store.CREDENTIALS_SECRET]
    docs = everything(cfg)
    for deployment in by_kind(docs, "Deployment"):
        if deployment["metadata"]["name"] in (object_store.NAME, names.POSTGRES, names.BROKER):
            continue
        env_from = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"secretRef": {"name": object_store.CREDENTIALS_SECRET}} in env_from, deployment["metadata"]["name"]
    # no node directory shared: the webserver can only serve what it fetched from the store
    assert not [d for d in docs if "hostPath" in json.dumps(d) and "compute-logs" in json.dumps(d)]
    assert {"name": "compute-logs", "emptyDir": {}} in instance["run_launcher"]["config"]["volumes"]
    store = next(d for d in by_kind(docs, "Deployment") if d["metadata"]["name"] == object_store.NAME)
    args = store["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("-initialbucket") + 1] == object_store.BUCKET
    secret = next(d for d in by_kind(docs, "Secret") if d["metadata"]["name"] == object_store.CREDENTIALS_SECRET)
    assert secret == next(d for d in by_kind(everything(cfg), "Secret")
                      if d["metadata"]["name"] == object_store.CREDENTIALS_SECRET)  # the same on every apply
    assert secret["stringData"]["AWS_REQUEST_CHECKSUM_CALCULATION"] == "when_required"
