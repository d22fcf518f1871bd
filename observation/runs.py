"""What a Dagster run left behind in Kubernetes and in its event log, for the suites to check claims on."""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes import client

from common.waits import Observation, WaitTimeout, wait_for
from dagster_api import DagsterWebserver
from observation.labels import (
    DAGSTER_COMPONENT_LABEL,
    EXTERNAL_JOB_COMPONENT,
    JOB_NAME_LABEL,
    STEP_JOB_PREFIX,
    run_job_pods,
    run_selector,
)

STEP_ARGS_ENV = "DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS"


@dataclass
class RunFootprint:
    """The Jobs and pods of one run, split into the run worker and the steps."""

    run_id: str
    run_jobs: list[client.V1Job] = field(default_factory=list)
    step_jobs: list[client.V1Job] = field(default_factory=list)
    run_pods: list[client.V1Pod] = field(default_factory=list)
    step_pods: list[client.V1Pod] = field(default_factory=list)
    external_jobs: list[client.V1Job] = field(default_factory=list)
    external_pods: list[client.V1Pod] = field(default_factory=list)

    @property
    def jobs(self) -> list[client.V1Job]:
        """Every Job of the run: run worker, steps and external jobs."""
        return self.run_jobs + self.step_jobs + self.external_jobs

    def still_running(self) -> list[str]:
        """What of the run still runs or may still start: Jobs not finished, pods Pending or Running (also those
        being deleted: their processes live until their grace period ends)."""
        jobs = [f"Job {job.metadata.name} ({(job.status.active if job.status else 0) or 0} active pod(s))"
                for job in self.jobs if not job_finished(job)]
        pods = [f"pod {pod.metadata.name} {pod.status.phase}" + (" (being deleted)" if pod.metadata.deletion_timestamp
                                                                   else "")
                for pod in self.pods if pod.status and pod.status.phase in ("Pending", "Running")]
        return jobs + pods

    @property
    def pods(self) -> list[client.V1Pod]:
        """Every pod of the run: run worker, steps and external jobs."""
        return self.run_pods + self.step_pods + self.external_pods


def job_finished(job: client.V1Job) -> bool:
    """Complete or Failed, or suspended (it makes no pod)."""
    if job.spec and job.spec.suspend:
        return True
    conditions = (job.status.conditions if job.status else None) or []
    return any(c.type in ("Complete", "Failed") and c.status == "True" for c in conditions)


def is_external(obj: client.V1Job | client.V1Pod) -> bool:
    """Made by k8s_job_op / execute_k8s_job (they label their Jobs and pods with this component)."""
    return (obj.metadata.labels or {}).get(DAGSTER_COMPONENT_LABEL) == EXTERNAL_JOB_COMPONENT


def footprint(core: client.CoreV1Api, batch: client.BatchV1Api, namespace: str, run_id: str) -> RunFootprint:
    """Every Job and pod in ``namespace`` labelled with the run's id, as the launchers label them."""
    selector = run_selector(run_id)
    found = RunFootprint(run_id)
    for job in batch.list_namespaced_job(namespace, label_selector=selector).items:
        if is_external(job):
            found.external_jobs.append(job)
        else:
            (found.step_jobs if job.metadata.name.startswith(STEP_JOB_PREFIX) else found.run_jobs).append(job)
    # Pods by the Job that owns them: the run Job's name carries the run id, step Jobs a hash.
    for pod in core.list_namespaced_pod(namespace, label_selector=selector).items:
        owner = pod.metadata.labels.get(JOB_NAME_LABEL, "")
        if is_external(pod):
            found.external_pods.append(pod)
        else:
            (found.step_pods if owner.startswith(STEP_JOB_PREFIX) else found.run_pods).append(pod)
    # A run pod made by K8sRunLauncher may carry the run id only in its Job's name.
    if not found.run_pods:
        for pod in core.list_namespaced_pod(namespace, label_selector=run_job_pods(run_id)).items:
            found.run_pods.append(pod)
    return found


def step_reports(webserver: DagsterWebserver, run_id: str) -> dict[str, dict[str, Any]]:
    """The metadata each ``report`` step put on its output: what its own process saw, by step key."""
    return {event.step_key: event.metadata for event in webserver.run_events(run_id)
            if event.event_type == "STEP_OUTPUT" and event.step_key}


def env_of(container: client.V1Container) -> dict[str, str]:
    """A container's env as ``name -> literal value`` (values from a Secret or ConfigMap by reference)."""
    env = {}
    for var in container.env or []:
        if var.value is not None:
            env[var.name] = var.value
        elif var.value_from and var.value_from.secret_key_ref:
            env[var.name] = f"<secret {var.value_from.secret_key_ref.name}/{var.value_from.secret_key_ref.key}>"
        elif var.value_from and var.value_from.config_map_key_ref:
            ref = var.value_from.config_map_key_ref
            env[var.name] = f"<configmap {ref.name}/{ref.key}>"
        else:
            env[var.name] = "<from the pod>"
    return env


def env_sources(container: client.V1Container) -> tuple[list[str], list[str]]:
    """(ConfigMaps, Secrets) the container takes whole through envFrom."""
    config_maps = [e.config_map_ref.name for e in container.env_from or [] if e.config_map_ref]
    secrets = [e.secret_ref.name for e in container.env_from or [] if e.secret_ref]
    return config_maps, secrets


def step_args_json(encoded: str) -> str:
    """DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS is base64 of zlib of Dagster's serialized ExecuteStepArgs."""
    return zlib.decompress(base64.b64decode(encoded)).decode()


def decode_step_args(encoded: str) -> dict[str, Any]:
    return json.loads(step_args_json(encoded))


def most_at_once(intervals: list[tuple[datetime, datetime]]) -> int:
    """The largest number of intervals overlapping at one instant (a pod ending as another starts: no overlap)."""
    edges = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                   key=lambda edge: (edge[0], edge[1]))
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak


def running_after(core: client.CoreV1Api, batch: client.BatchV1Api, namespace: str, run_id: str,
                  grace: float, interval: float = 2.0) -> list[str]:
    """What of the run still runs ``grace`` seconds from now, or nothing as soon as all of it stopped: a verdict
    reached at a stated deadline, never an open-ended wait."""
    last: list[str] = []

    def look() -> Observation[None]:
        nonlocal last
        last = footprint(core, batch, namespace, run_id).still_running()
        return Observation(not last, "; ".join(last) or "nothing running")

    try:
        wait_for(f"nothing of run {run_id} to run", look, grace, interval)
    except WaitTimeout:
        return last
    return []
