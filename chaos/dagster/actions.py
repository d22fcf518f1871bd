"""Actions chaostoolkit-kubernetes does not have: delete a Dagster run's Kubernetes Job; stop and continue a process
of the cluster's control plane (the apiserver of a cluster whose processes run on this machine)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from chaoslib.exceptions import ActivityFailed
from kubernetes import client, config

from observation.labels import run_job_name

__all__ = ["continue_processes", "delete_run_job", "process_state", "stop_processes"]


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


def process_state(pid: int) -> str:
    """The kernel's state letter for ``pid`` (``T``: stopped), from /proc; ``gone`` when it does not exist."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return "gone"
    return stat.rsplit(")", 1)[1].split()[0]  # the name in parentheses may hold spaces


def _signal_processes(pids: str, process_name: str, sig: signal.Signals) -> list[int]:
    chosen = [int(pid) for pid in str(pids).replace(" ", "").split(",") if pid]
    if not chosen:
        raise ActivityFailed(f"no pid given: pass --var pids=$(pgrep -d, -x {process_name})")
    for pid in chosen:
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except FileNotFoundError as exc:
            raise ActivityFailed(f"process {pid} does not exist") from exc
        if name != process_name:
            raise ActivityFailed(f"process {pid} is {name}, not {process_name}: refusing to signal it")
    for pid in chosen:
        os.kill(pid, sig)
    return chosen


def stop_processes(pids: str, process_name: str = "kube-apiserver") -> list[int]:
    """SIGSTOP each of ``pids`` (comma-separated), each checked to run ``process_name``; returns them. A stopped
    apiserver keeps its port open but answers nothing, as an apiserver behind a dead load balancer does."""
    return _signal_processes(pids, process_name, signal.SIGSTOP)


def continue_processes(pids: str, process_name: str = "kube-apiserver") -> list[int]:
    """SIGCONT each of ``pids`` (comma-separated): what ``stop_processes`` stopped runs on."""
    return _signal_processes(pids, process_name, signal.SIGCONT)
