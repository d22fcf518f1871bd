"""Actions chaostoolkit-kubernetes does not have: delete a Dagster run's Kubernetes Job."""

from __future__ import annotations

import os
from pathlib import Path

from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from observation.labels import run_job_name

__all__ = ["delete_run_job"]


def _batch() -> client.BatchV1Api:
    kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config")).split(os.pathsep)[0]
    api = config.new_client_from_config(config_file=kubeconfig, context=os.environ.get("KUBERNETES_CONTEXT"))
    return client.BatchV1Api(api)


def delete_run_job(run_id: str, namespace: str = "dkc-k8s-job") -> dict[str, str]:
    """Delete the run's Job ``dagster-run-<run_id>`` and its pods (foreground); returns the Job's name and UID."""
    name = run_job_name(run_id)
    batch = _batch()
    try:
        job = batch.read_namespaced_job(name, namespace)
        batch.delete_namespaced_job(name, namespace, propagation_policy="Foreground", grace_period_seconds=0)
    except client.ApiException as exc:
        raise ActivityFailed(f"cannot delete Job {namespace}/{name}: {exc.status} {exc.reason}") from exc
    return {"name": name, "uid": job.metadata.uid}
