"""Deploy a chart-shaped Dagster into its own namespace as ordered steps with readiness gates.

Storage first (Postgres, the broker), then the code locations, then the webserver, the daemon and
the Celery workers. Each gate waits with a deadline and, on timeout, names the pod that is not
ready and why. Any failure (or Ctrl-C) deletes the namespace unless ``keep``.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from clusters import manifests as kube_manifests
from common.errors import clean_up_after
from common.progress import phase
from common.waits import Observation, TerminalState, WaitTimeout, wait_for
from dagster_api import DagsterApiError
from deploy import manifests, names, object_store, postgres_storage, settings
from deploy.deployment import Deployment
from deploy.errors import DeployError
from deploy.settings import DeploymentSettings
from observation.kube import (
    deployment_available,
    pod_summary,
    rollout_complete,
    selector_text,
    terminating_pods,
    wait_pod_finished,
)

READY_TIMEOUT = 300.0
def last_log_lines(api: client.ApiClient, namespace: str, selector: str, lines: int = 3) -> str:
    """The last lines each matching pod printed (previous container if it restarted), for one-line errors."""
    core = client.CoreV1Api(api)
    found = []
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        restarted = any(s.restart_count for s in pod.status.container_statuses or [])
        try:
            text = core.read_namespaced_pod_log(pod.metadata.name, namespace, tail_lines=lines, previous=restarted,
                                                _preload_content=False).data.decode(errors="replace")
        except ApiException:
            continue
        found.append(f"{pod.metadata.name}: " + " | ".join(text.strip().splitlines()[-lines:]))
    return " ; ".join(found) or "no logs"


def _gate(api: client.ApiClient, namespace: str, what: str, selector: str, timeout: float = READY_TIMEOUT) -> None:
    try:
        wait_for(f"{what} to be ready in {namespace}", lambda: deployment_available(api, namespace, selector),
                 timeout)
    except WaitTimeout as exc:
        raise DeployError(f"{exc}; last log lines: {last_log_lines(api, namespace, selector)}") from exc


def create_namespace(api: client.ApiClient, cfg: DeploymentSettings) -> None:
    body = client.V1Namespace(metadata=client.V1ObjectMeta(name=cfg.namespace, labels={
        settings.MANAGED_LABEL: "dkc", "dkc.dagster.io/combination": cfg.combination}))
    try:
        client.CoreV1Api(api).create_namespace(body)
    except ApiException as exc:
        if exc.status != 409:
            raise
    wait_for(f"ServiceAccount {cfg.namespace}/default", lambda: _has_default_sa(api, cfg.namespace), 60)


def _has_default_sa(api: client.ApiClient, namespace: str) -> Observation[None]:
    accounts = [sa.metadata.name for sa in client.CoreV1Api(api).list_namespaced_service_account(namespace).items]
    return Observation("default" in accounts, f"service accounts: {accounts}")


def deploy(api: client.ApiClient, cfg: DeploymentSettings, keep: bool = False) -> Deployment:
    """Bring the deployment up and wait until every component is ready."""
    try:
        with phase(f"Creating namespace {cfg.namespace} ({cfg.combination})"):
            create_namespace(api, cfg)
            # PostgreSQL's data volume: a kept deployment's own, else a new one (its node chosen now).
            cfg = replace(cfg, postgres_volume=postgres_storage.ensure_volume(api, cfg))
            groups = manifests.all_manifests(cfg)
            kube_manifests.apply(api, groups["foundation"], namespace=cfg.namespace)
        volume = cfg.postgres_volume
        with phase("Starting PostgreSQL" + (" and the Celery broker" if cfg.uses_celery else "")
                   + (" and the compute logs' object store" if cfg.images.object_store else "")
                   + (f" (data in {volume.host_path} on {volume.hostname})" if volume else "")):
            kube_manifests.apply(api, groups["postgresql"] + groups.get("broker", []) + groups.get("object store", []),
                                 namespace=cfg.namespace)
            _gate(api, cfg.namespace, "PostgreSQL", names.selector(names.POSTGRESQL_COMPONENT))
            if cfg.uses_celery:
                _gate(api, cfg.namespace, "the Celery broker", names.selector(names.REDIS_COMPONENT))
            if cfg.images.object_store:
                _gate(api, cfg.namespace, "the compute logs' object store", object_store.selector())
        for location in cfg.code_locations:
            with phase(f"Starting code location {location.name} ({location.image})"):
                kube_manifests.apply(api, groups[f"code location {location.name}"], namespace=cfg.namespace)
        for location in cfg.code_locations:
            with phase(f"Waiting for code location {location.name}"):
                _gate(api, cfg.namespace, f"code location {location.name}", names.location_selector(location.name))
        with phase(f"Starting the webserver ({cfg.webserver_replicas} replica(s)), the daemon"
                   + (f" and {cfg.celery_worker_replicas} Celery worker(s)" if cfg.uses_celery else "")):
            control_plane = groups["webserver"] + groups["daemon"] + groups.get("celery workers", [])
            kube_manifests.apply(api, control_plane, namespace=cfg.namespace)
            _gate(api, cfg.namespace, "the webserver", names.selector(names.WEBSERVER_COMPONENT))
            _gate(api, cfg.namespace, "the daemon", names.selector(names.DAEMON_COMPONENT))
            if cfg.uses_celery:
                _gate(api, cfg.namespace, "the Celery workers", names.selector(names.CELERY_COMPONENT))
        deployment = Deployment(settings=cfg, api=api)
        with phase("Waiting for GraphQL and the code locations to load"):
            deployment.webserver.wait_until_answering(READY_TIMEOUT)
            for location in cfg.code_locations:
                try:
                    # A webserver kept from an earlier session may still show the replaced server's code:
                    # ask it to load from the server that runs now, as a user does after a deploy.
                    with suppress(DagsterApiError):  # a failed reload shows as a load error, retried below
                        deployment.webserver.reload_location(location.name)
                    deployment.webserver.wait_for_location_loaded(location.name, READY_TIMEOUT, reload_on_error=True)
                except WaitTimeout as exc:
                    logs = last_log_lines(api, cfg.namespace, names.location_selector(location.name))
                    raise DeployError(f"code location {location.name} did not load: {exc}; "
                                      f"last log lines: {logs}") from exc
    except BaseException as failure:
        if not keep:
            clean_up_after(failure, lambda: teardown(api, cfg), f"deleting {cfg.namespace}")
        raise
    return deployment


@contextmanager
def reconfigured(deployment: Deployment, **changes: Any) -> Iterator[Deployment]:
    """The deployment with other instance settings (e.g. ``max_resume_run_attempts=1``), restored afterwards."""
    if not deployment.settings.owned:  # suites skip before this; a deployment of someone else is never edited
        raise DeployError(f"the Dagster in {deployment.namespace} was not deployed by the suite: never reconfigured")
    try:
        yield _reconfigure(deployment, replace(deployment.settings, **changes))
    except BaseException as failure:  # also when the new config never came up: restore, and say what failed first
        clean_up_after(failure, lambda: _reconfigure(deployment, deployment.settings),
                       f"restoring the instance settings of {deployment.namespace}")
        raise
    _reconfigure(deployment, deployment.settings)


def _reconfigure(deployment: Deployment, cfg: DeploymentSettings) -> Deployment:
    """Apply ``cfg``'s dagster.yaml; the pods reading it roll (their checksum annotation changed)."""
    if cfg.helm:  # installed with the chart: reconfigured as its users do, by helm upgrade with other values
        from deploy import helm_deploy  # it builds on this module
        return helm_deploy.reconfigure(deployment, cfg)
    groups = manifests.all_manifests(cfg)
    control_plane = ["webserver", "daemon", "celery workers"]
    rolled = [names.WEBSERVER, names.DAEMON] + ([names.CELERY_WORKERS] if cfg.uses_celery else [])
    with phase(f"Rolling the control plane of {cfg.namespace} onto its new instance config"):
        docs = groups["foundation"] + [doc for group in control_plane for doc in groups.get(group, [])]
        kube_manifests.apply(deployment.api, docs, namespace=cfg.namespace)
        for name in rolled:
            wait_for(f"Deployment {cfg.namespace}/{name} to roll out",
                     idle_rollout(deployment.api, cfg.namespace, name, deaf_pid1=name == names.CELERY_WORKERS),
                     READY_TIMEOUT, 2)
        changed = Deployment(settings=cfg, api=deployment.api)
        changed.webserver.wait_until_answering(READY_TIMEOUT)
        for location in cfg.code_locations:
            changed.webserver.wait_for_location_loaded(location.name, READY_TIMEOUT)
    return changed


def idle_rollout(api: client.ApiClient, namespace: str, name: str,
                 deaf_pid1: bool = False) -> Callable[[], Observation[None]]:
    """A look at a control-plane Deployment rolling out while nothing runs on it. With ``deaf_pid1`` (the Celery
    workers), each replaced pod's processes are asked to stop (SIGTERM to all but PID 1): dagster-celery's worker
    wrapper runs as PID 1 and ignores SIGTERM, so an old worker would keep its pod, and take tasks (which die with
    it), for its whole grace period. Once asked,
    a Celery worker shuts down warm and takes no new task, so the rollout is complete without waiting for the pod to
    go. Neither deleting the pod again with a shorter grace period (the kubelet keeps the first) nor force-deleting
    it does: a force-deleted pod leaves the API while its container runs on, and its service account token dies with
    the pod object, so the old worker's tasks fail with 401 Unauthorized."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    asked: set[str] = set()

    def look() -> Observation[None]:
        if deaf_pid1:  # the others leave on the kubelet's own SIGTERM
            spec = apps.read_namespaced_deployment(name, namespace, _request_timeout=10).spec
            for pod in terminating_pods(core, namespace, selector_text(spec.selector)):
                if pod not in asked and _ask_to_stop(api, namespace, pod):
                    asked.add(pod)
        return rollout_complete(apps, namespace, name, settled=asked)
    return look


def _ask_to_stop(api: client.ApiClient, namespace: str, pod: str) -> bool:
    """SIGTERM to every process of the pod's (first) container but its PID 1, as the kubelet's SIGTERM would reach
    them if PID 1 passed it on; True once the command ran (also when no process was left to signal). False when it
    could not run (a container without a shell, one not running): such a pod counts until it is gone."""
    from kubernetes.stream import stream  # it patches the client it is given: a client of its own

    try:
        with client.ApiClient(api.configuration) as own:
            session = stream(client.CoreV1Api(own).connect_get_namespaced_pod_exec, pod, namespace,
                             command=["sh", "-c", "kill -TERM -1"], stdout=True, stderr=True, stdin=False, tty=False,
                             _preload_content=False, _request_timeout=10)
            session.run_forever(timeout=10)
            return session.returncode is not None
    except Exception:  # the client's websocket path raises more than ApiException (e.g. AttributeError on a 404)
        return False


def teardown(api: client.ApiClient, *deployments: DeploymentSettings, timeout: float = 180.0) -> None:
    """Clear what the deployments left on the node, delete their namespaces (all at once) and wait until they
    are gone, so the next deployment starts clean."""
    core = client.CoreV1Api(api)
    namespaces = [cfg.namespace for cfg in deployments]
    for cfg in deployments:
        if cfg.helm:  # the release goes the chart's way (helm uninstall) before its namespace
            from deploy import helm_deploy
            helm_deploy.uninstall(api, cfg)
    with phase(f"Deleting namespace(s) {', '.join(namespaces)}"):
        for cfg in deployments:
            if not cfg.images.object_store:  # with the store no node directory holds them
                _clear_compute_logs(core, cfg)
            postgres_storage.clear(api, cfg)
        for namespace in namespaces:
            try:
                core.delete_namespace(namespace, propagation_policy="Background")
            except ApiException as exc:
                if exc.status != 404:
                    raise
        for namespace in namespaces:
            wait_for(f"namespace {namespace} to be deleted", lambda ns=namespace: _namespace_gone(core, ns), timeout)
        postgres_storage.wait_volumes_gone(api, namespaces)


def _clear_compute_logs(core: client.CoreV1Api, cfg: DeploymentSettings) -> None:
    """Remove the deployment's compute log directory from the node; a namespace already gone has none to clear."""
    try:
        core.create_namespaced_pod(cfg.namespace, manifests.compute_log_cleaner(cfg))
    except ApiException as exc:
        if exc.status in (403, 404, 409):  # namespace gone or terminating, or a cleaner already made
            return
        raise
    try:
        pod = wait_pod_finished(core, cfg.namespace, manifests.COMPUTE_LOG_CLEANER, timeout=60)
        if pod.status.phase != "Succeeded":
            print(f"  ! could not clear compute logs of {cfg.namespace} from the node: {pod_summary(pod)}")
    except (WaitTimeout, TerminalState) as exc:
        print(f"  ! could not clear compute logs of {cfg.namespace} from the node: {exc}")


def _namespace_gone(core: client.CoreV1Api, namespace: str) -> Observation[None]:
    try:
        found = core.read_namespace(namespace)
    except ApiException as exc:
        if exc.status == 404:
            return Observation(True, "gone")
        raise
    return Observation(False, f"phase {found.status.phase}")


def existing_secret_value(api: client.ApiClient, namespace: str, name: str, key: str) -> str | None:
    """A secret of a deployment kept from an earlier run (its database already uses the password)."""
    try:
        secret = client.CoreV1Api(api).read_namespaced_secret(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return base64.b64decode(secret.data[key]).decode()
