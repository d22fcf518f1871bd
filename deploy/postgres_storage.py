"""Where the suite's PostgreSQL keeps its data: found again by label, chosen when there is none, removed at teardown.

The shape is the same on every provider: a PersistentVolume with a hostPath directory on one node (its node
affinity pins the volume, and the PostgreSQL pod with it), pre-bound to the deployment's claim, no StorageClass
(``deploy.postgres_manifests.postgres_data``). Why not the cluster's default StorageClass where there is one (kind): its
local-path provisioner makes exactly this (a node directory behind a PV with node affinity), so it would add a
second shape to test for nothing, and the local provider has no provisioner at all. A volume we make names its
node and directory, so teardown removes the data from exactly there, and a kept deployment finds its database
again by the PV's label.

Each new volume gets a directory of its own (namespace + random suffix): a database that a teardown which never
finished left on the node is never opened again, with another password.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from kubernetes import client
from kubernetes.client.rest import ApiException

from clusters.provider import RUN_NODE_LABEL
from common.waits import Observation, TerminalState, WaitTimeout, wait_for
from deploy import names, postgres_manifests
from deploy.errors import DeployError
from deploy.names import POSTGRES
from deploy.settings import DeploymentSettings, PostgresVolume
from observation.kube import pod_summary, wait_pod_finished, why_no_pods

HOST_ROOT = "/var/tmp/dagster-k8s-conformance/postgresql"
HOSTNAME_LABEL = "kubernetes.io/hostname"
# A volume whose claim is gone (its namespace was deleted, teardown did not finish) never binds again.
STALE_PHASES = ("Released", "Failed")


def new_volume(namespace: str, hostname: str, token: str | None = None) -> PostgresVolume:
    token = token or secrets.token_hex(4)
    return PostgresVolume(name=f"{namespace}-postgresql-{token}", hostname=hostname,
                          host_path=f"{HOST_ROOT}/{namespace}-{token}")


def schedulable_hostname(nodes: Iterable[client.V1Node]) -> str:
    """The hostname label of the first Ready node (by name) that takes ordinary pods: no cordon, no NoSchedule or
    NoExecute taint (a multi-node kind cluster's control plane has one). A node that is not the run node comes
    first: draining the run node (C30) must not take the database, pinned to its node, with it."""
    seen, takers = [], []
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        problems = why_no_pods(node)
        if not problems:
            takers.append(node)
        else:
            seen.append(f"{node.metadata.name} ({', '.join(problems)})")
    if not takers:
        raise DeployError(f"no Ready, untainted node for PostgreSQL's data volume (nodes: {'; '.join(seen) or 'none'}"
                          "): uncordon a node or remove its NoSchedule taint")
    chosen = min(takers, key=lambda n: RUN_NODE_LABEL in (n.metadata.labels or {}))
    return (chosen.metadata.labels or {}).get(HOSTNAME_LABEL, chosen.metadata.name)


def volume_of(persistent_volume: client.V1PersistentVolume) -> PostgresVolume:
    """Read our volume back from its PV (a kept deployment's: its node and directory are fixed)."""
    terms = persistent_volume.spec.node_affinity.required.node_selector_terms
    hostname = next(e.values[0] for t in terms for e in t.match_expressions if e.key == HOSTNAME_LABEL)
    return PostgresVolume(name=persistent_volume.metadata.name, hostname=hostname,
                          host_path=persistent_volume.spec.host_path.path)


def volumes(core: client.CoreV1Api, namespace: str) -> list[client.V1PersistentVolume]:
    """The PVs holding PostgreSQL data of the deployment in ``namespace`` (PVs are cluster-scoped: by label)."""
    return core.list_persistent_volume(label_selector=f"{postgres_manifests.POSTGRES_DATA_LABEL}={namespace}").items


def ensure_volume(api: client.ApiClient, cfg: DeploymentSettings) -> PostgresVolume:
    """The volume a kept deployment already uses, else a new one on a schedulable node. Stale volumes of the
    namespace (claim gone) are removed first, data included. The namespace must exist (the cleaner runs there)."""
    core = client.CoreV1Api(api)
    found = volumes(core, cfg.namespace)
    for stale in (pv for pv in found if pv.status.phase in STALE_PHASES):
        remove_volume(core, cfg, stale)
    live = [pv for pv in found if pv.status.phase not in STALE_PHASES]
    if live:
        return volume_of(live[0])
    return new_volume(cfg.namespace, schedulable_hostname(core.list_node().items))


def clear(api: client.ApiClient, cfg: DeploymentSettings) -> None:
    """Before the namespace goes: stop PostgreSQL, remove its data directory from the node and delete its PV(s)
    (a PV still bound goes once its claim has gone with the namespace: ``wait_volumes_gone``)."""
    core = client.CoreV1Api(api)
    found = volumes(core, cfg.namespace)
    if not found:
        return
    _stop_postgres(api, cfg.namespace)
    for persistent_volume in found:
        remove_volume(core, cfg, persistent_volume)


def remove_volume(core: client.CoreV1Api, cfg: DeploymentSettings, persistent_volume: client.V1PersistentVolume
                  ) -> None:
    volume = volume_of(persistent_volume)
    _remove_directory(core, cfg, volume)
    try:
        core.delete_persistent_volume(volume.name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def wait_volumes_gone(api: client.ApiClient, namespaces: Iterable[str], timeout: float = 120) -> None:
    core = client.CoreV1Api(api)

    def look(namespace: str) -> Observation[None]:
        left = volumes(core, namespace)
        return Observation(not left, ", ".join(f"{pv.metadata.name} {pv.status.phase}" for pv in left))

    for namespace in namespaces:
        wait_for(f"PostgreSQL's PersistentVolume of {namespace} to be deleted", lambda ns=namespace: look(ns), timeout)


def _stop_postgres(api: client.ApiClient, namespace: str, timeout: float = 60) -> None:
    """Scale PostgreSQL to zero and wait until its pods are gone: no process writes into the directory while it is
    removed, and no replacement pod recreates it."""
    try:
        client.AppsV1Api(api).patch_namespaced_deployment_scale(POSTGRES, namespace, {"spec": {"replicas": 0}})
    except ApiException as exc:
        if exc.status == 404:
            return
        raise
    core = client.CoreV1Api(api)

    def look() -> Observation[None]:
        pods = core.list_namespaced_pod(namespace, label_selector=names.POSTGRESQL_SELECTOR).items
        return Observation(not pods, " | ".join(pod_summary(p) for p in pods))

    try:
        wait_for(f"PostgreSQL's pods in {namespace} to stop", look, timeout)
    except WaitTimeout as exc:
        print(f"  ! {exc}; removing its data anyway")


def _remove_directory(core: client.CoreV1Api, cfg: DeploymentSettings, volume: PostgresVolume) -> None:
    pod = postgres_manifests.postgres_data_cleaner(cfg, volume)
    name = pod["metadata"]["name"]
    try:
        core.create_namespaced_pod(cfg.namespace, pod)
    except ApiException as exc:
        if exc.status in (403, 404, 409):  # namespace gone or terminating, or a cleaner already made
            return
        raise
    try:
        finished = wait_pod_finished(core, cfg.namespace, name, timeout=60)
        if finished.status.phase != "Succeeded":
            print(f"  ! could not remove {volume.host_path} from node {volume.hostname}: {pod_summary(finished)}")
    except (WaitTimeout, TerminalState) as exc:
        print(f"  ! could not remove {volume.host_path} from node {volume.hostname}: {exc}")
    try:
        core.delete_namespaced_pod(name, cfg.namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
