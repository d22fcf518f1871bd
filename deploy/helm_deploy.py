"""Dagster installed with the official Helm chart by the suite itself (``--dagster helm --chart PATH``).

Ordered steps as for the suite's own deployment: namespace and the Secrets the chart is pointed at, the suite's
PostgreSQL (and Redis), then ``helm upgrade --install`` of release ``dagster`` with the suite's images, sample code
locations and instance settings (deploy/helm_values.py), then readiness gates per component. What the chart made is
then described by discovery (deploy/discover.py), as for a Dagster someone else installed, but owned: other
instance settings go through ``helm upgrade`` with changed values, teardown is ``helm uninstall`` + the namespace.
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from clusters import manifests as kube_manifests
from common.errors import clean_up_after
from common.progress import phase, say
from common.waits import Observation, wait_for
from dagster_api import DagsterWebserver
from deploy import bringup, manifests, names, postgres_manifests, postgres_storage
from deploy import settings as s
from deploy.deployment import Deployment
from deploy.discover import discover, settings_for
from deploy.errors import DeployError
from deploy.helm import HelmError, HelmRelease, run_helm
from deploy.helm_values import chart_problem, chart_values
from deploy.images import LoadImage
from deploy.preflight import load_locations
from deploy.settings import DeploymentSettings, HelmChart
from images.busybox import chart_busybox_image

__all__ = ["chart_source", "deploy", "described", "reconfigure", "release", "suite_objects", "uninstall"]

# The objects the chart is pointed at but does not make: the Postgres password (generatePostgresqlPasswordSecret
# is off) and the ConfigMap and Secret the sample code locations pass to their runs (and each location's own
# Secret: manifests.location_secrets).
SUITE_OBJECTS = (names.POSTGRES_SECRET, s.TEST_ENV_CONFIG_MAP, s.TEST_ENV_SECRET)


def release(cfg: DeploymentSettings) -> HelmRelease:
    source = _source(cfg)
    return HelmRelease(name=names.RELEASE, namespace=cfg.namespace, chart=source.chart)


def _source(cfg: DeploymentSettings) -> HelmChart:
    if cfg.helm is None:
        raise DeployError(f"the Dagster in {cfg.namespace} was not installed with a Helm chart")
    return cfg.helm


def chart_source(chart: Path, values_file: Path | None, load: LoadImage) -> HelmChart:
    """The chart to install, with the suite's busybox image (built once, loaded into the nodes) for the chart's
    `nslookup` init containers: the chart's default (docker.io/busybox) cannot be pulled here."""
    return HelmChart(chart=chart, values_file=values_file, busybox_image=load(*chart_busybox_image()))


def suite_objects(cfg: DeploymentSettings) -> list[dict[str, Any]]:
    """The Secrets and ConfigMap the chart is pointed at, as the suite's own deployment makes them."""
    return [doc for doc in manifests.foundation(cfg) if doc["metadata"]["name"] in SUITE_OBJECTS
            and doc["kind"] in ("Secret", "ConfigMap")] + manifests.location_secrets(cfg)


def _helm_apply(api: client.ApiClient, cfg: DeploymentSettings) -> None:
    """helm upgrade --install with the suite's values, then the user's (which win, as with helm's -f)."""
    source = _source(cfg)
    with tempfile.TemporaryDirectory(prefix="dkc-helm-values-") as directory:
        ours = Path(directory) / "dkc-values.yaml"
        ours.write_text(yaml.safe_dump(chart_values(cfg, source.busybox_image), sort_keys=False))
        files = [ours, *([source.values_file] if source.values_file else [])]
        run_helm(api, release(cfg).upgrade_install(files),
                 f"release {names.RELEASE} of {source.chart} in {cfg.namespace}")


def _gates(api: client.ApiClient, cfg: DeploymentSettings) -> None:
    for location in cfg.code_locations:
        bringup._gate(api, cfg.namespace, f"code location {location.name}", names.location_selector(location.name))
    bringup._gate(api, cfg.namespace, "the webserver", names.selector(names.WEBSERVER_COMPONENT))
    bringup._gate(api, cfg.namespace, "the daemon", names.selector(names.DAEMON_COMPONENT))
    if cfg.uses_celery:
        bringup._gate(api, cfg.namespace, "the Celery workers", names.selector(names.CELERY_COMPONENT))


def described(api: client.ApiClient, cfg: DeploymentSettings) -> DeploymentSettings:
    """What the chart made, read back by discovery as for someone else's Dagster, but ours (owned)."""
    found = settings_for(discover(api, cfg.namespace), cfg.combination)
    return replace(found, owned=True, images=cfg.images, helm=cfg.helm, postgres_volume=cfg.postgres_volume,
                   postgres_password=cfg.postgres_password, test_secret_value=cfg.test_secret_value,
                   image_pull_policy=cfg.image_pull_policy, compute_log_host_dir=cfg.compute_log_host_dir)


def _daemons_heartbeat(webserver: DagsterWebserver) -> Observation[None]:
    late = [d.daemon_type for d in webserver.daemon_statuses() if d.required and not d.healthy]
    return Observation(not late, f"no fresh heartbeat from {', '.join(late)}" if late else "all heartbeat")


def _serving(api: client.ApiClient, cfg: DeploymentSettings) -> Deployment:
    deployment = Deployment(settings=cfg, api=api)
    with phase("Waiting for GraphQL, the code locations to load and the daemon to heartbeat"):
        deployment.webserver.wait_until_answering(bringup.READY_TIMEOUT)
        load_locations(deployment.webserver, cfg, bringup.READY_TIMEOUT)
        # The chart gives the daemon no readiness probe: its pod is Ready before its first heartbeat.
        wait_for(f"every required daemon in {cfg.namespace} to heartbeat",
                 lambda: _daemons_heartbeat(deployment.webserver), bringup.READY_TIMEOUT, 2)
    return deployment


def deploy(api: client.ApiClient, cfg: DeploymentSettings, keep: bool = False) -> Deployment:
    """Install the chart for ``cfg`` (or upgrade a kept install) and wait until every component is ready."""
    source = _source(cfg)
    problem = chart_problem(source.chart, source.values_file)
    if problem:
        raise DeployError(problem)
    try:
        with phase(f"Creating namespace {cfg.namespace} ({cfg.combination}, Helm chart {source.chart})"):
            bringup.create_namespace(api, cfg)
            cfg = replace(cfg, postgres_volume=postgres_storage.ensure_volume(api, cfg))
            kube_manifests.apply(api, suite_objects(cfg), namespace=cfg.namespace)
        with phase("Starting the suite's PostgreSQL" + (" and Redis" if cfg.uses_celery else "")
                   + " (the chart's bitnami subcharts are off)"):
            kube_manifests.apply(api, postgres_manifests.postgres(cfg) + manifests.broker(cfg), namespace=cfg.namespace)
            bringup._gate(api, cfg.namespace, "PostgreSQL", names.selector(names.POSTGRESQL_COMPONENT))
            if cfg.uses_celery:
                bringup._gate(api, cfg.namespace, "the Celery broker", names.selector(names.REDIS_COMPONENT))
        with phase(f"helm upgrade --install {names.RELEASE} {source.chart} -n {cfg.namespace}"):
            _helm_apply(api, cfg)
        with phase("Waiting for the chart's code locations, webserver, daemon"
                   + (" and Celery workers" if cfg.uses_celery else "")):
            _gates(api, cfg)
        return _serving(api, described(api, cfg))
    except BaseException as failure:
        if not keep:
            clean_up_after(failure, lambda: bringup.teardown(api, cfg), f"removing the release in {cfg.namespace}")
        raise


def reconfigure(deployment: Deployment, cfg: DeploymentSettings) -> Deployment:
    """``cfg``'s instance settings through ``helm upgrade``; the pods reading dagster.yaml roll (the chart's
    checksum annotation changed)."""
    api, parts = deployment.api, cfg.names
    with phase(f"helm upgrade {names.RELEASE} in {cfg.namespace} onto its new instance config"):
        _helm_apply(api, cfg)
        for name in [parts.webserver, parts.daemon, *([parts.celery_workers] if parts.celery_workers else [])]:
            wait_for(f"Deployment {cfg.namespace}/{name} to roll out",
                     bringup.idle_rollout(api, cfg.namespace, name, deaf_pid1=name == parts.celery_workers),
                     bringup.READY_TIMEOUT, 2)
    return _serving(api, described(api, cfg))


def uninstall(api: client.ApiClient, cfg: DeploymentSettings) -> None:
    """helm uninstall, so the release's objects go the chart's way before the namespace is deleted."""
    with phase(f"helm uninstall {names.RELEASE} -n {cfg.namespace}"):
        try:
            run_helm(api, release(cfg).uninstall(), f"release {names.RELEASE} in {cfg.namespace}")
        except HelmError as exc:  # teardown goes on: deleting the namespace removes the release's objects too
            say(f"  ! {exc}; deleting the namespace removes what the release made")
