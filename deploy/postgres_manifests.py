"""PostgreSQL's objects for the suite's own Dagster (and under the chart, whose bitnami subchart is off): its
Deployment and Service, the node directory behind a PersistentVolume that keeps its data (deploy/postgres_storage.py
chooses the node and removes the directory), and the pod that removes it."""

from __future__ import annotations

from typing import Any

from deploy import names, objects
from deploy.objects import Manifest
from deploy.settings import DeploymentSettings, PostgresVolume
from images.dagster import POSTGRES_ENTRYPOINT

POSTGRES_DATA_MOUNT = "/var/lib/postgresql/data"
# initdb wants an empty directory: the database lives one level below the volume's root, beside the lock.
POSTGRES_PGDATA = f"{POSTGRES_DATA_MOUNT}/pgdata"
POSTGRES_DATA_CLAIM = f"{names.POSTGRES}-data"
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
                    "name": names.POSTGRES_SECRET, "key": names.POSTGRES_PASSWORD_KEY}}},
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
    component = names.POSTGRESQL_COMPONENT
    return [*postgres_data(cfg), objects.deployment(names.POSTGRES, cfg.namespace, component, pod, strategy="Recreate"),
            objects.service(names.POSTGRES, cfg.namespace, component, 5432, 5432)]


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
        "metadata": {"name": volume.name,
                     "labels": {**objects.labels(names.POSTGRESQL_COMPONENT), POSTGRES_DATA_LABEL: cfg.namespace}},
        "spec": {**access, "capacity": {"storage": POSTGRES_DATA_SIZE},
                 # Retain: we delete the directory ourselves (with a pod); the hostPath deleter refuses paths
                 # outside /tmp.
                 "persistentVolumeReclaimPolicy": "Retain",
                 "claimRef": {"namespace": cfg.namespace, "name": POSTGRES_DATA_CLAIM},
                 "hostPath": {"path": volume.host_path, "type": "DirectoryOrCreate"},
                 "nodeAffinity": node_affinity},
    }
    claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
             "metadata": objects.meta(POSTGRES_DATA_CLAIM, cfg.namespace, names.POSTGRESQL_COMPONENT),
             "spec": {**access, "volumeName": volume.name, "resources": {"requests": {"storage": POSTGRES_DATA_SIZE}}}}
    return [persistent_volume, claim]


def postgres_data_cleaner(cfg: DeploymentSettings, volume: PostgresVolume) -> Manifest:
    """A pod on the volume's node that removes PostgreSQL's data directory (mounting its parent removes the
    directory itself, not only what is in it)."""
    parent, _, leaf = volume.host_path.rstrip("/").rpartition("/")
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": objects.meta(f"dkc-clear-{volume.name}"[:63], cfg.namespace, "cleanup"),
        "spec": {
            "restartPolicy": "Never", "nodeSelector": {"kubernetes.io/hostname": volume.hostname},
            "containers": [{"name": "clear", "image": cfg.images.postgres, "imagePullPolicy": cfg.image_pull_policy,
                            "command": ["rm", "-rf", f"/node-dir/{leaf}"],
                            "volumeMounts": [{"name": "node-dir", "mountPath": "/node-dir"}]}],
            "volumes": [{"name": "node-dir", "hostPath": {"path": parent, "type": "DirectoryOrCreate"}}],
        },
    }
