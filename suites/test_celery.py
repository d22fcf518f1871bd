"""C8: CeleryK8sRunLauncher + celery_k8s_job_executor.

Steps go through the broker: each is picked up by one of the Celery worker pods, and the step pods
running at once never exceed the workers' total concurrency (replicas x each worker's --concurrency,
read from the cluster), measured from the step pods' container start and finish times.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from kubernetes import client

from deploy import settings
from deploy.bringup import Deployment
from observation.runs import footprint, most_at_once
from suites import only
from workloads.locations.conformance.definitions import FAN_OUT_WIDTH

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster, pytest.mark.c8]


def celery_capacity(dagster: Deployment) -> int:
    """Replicas x --concurrency of the Celery worker Deployment, as the cluster has it."""
    workers = dagster.apps.read_namespaced_deployment(settings.CELERY_WORKERS, dagster.namespace)
    command = workers.spec.template.spec.containers[0].command or []
    concurrency = [int(arg.split("=", 1)[1]) for arg in command if arg.startswith("--concurrency=")]
    assert concurrency, f"the Celery workers' command sets no --concurrency: {command}"
    return (workers.spec.replicas or 0) * concurrency[0]


def running_interval(pod: client.V1Pod) -> tuple[datetime, datetime]:
    state = pod.status.container_statuses[0].state
    assert state.terminated, f"step pod {pod.metadata.name} has not finished: {state}"
    return state.terminated.started_at, state.terminated.finished_at


def test_step_pods_running_at_once_never_exceed_the_celery_workers_concurrency(dagster: Deployment) -> None:
    only(dagster, "celery-k8s")
    capacity = celery_capacity(dagster)

    run_id = dagster.run_to_success("fan_out", timeout=600)
    step_pods = footprint(dagster, run_id).step_pods
    peak = most_at_once([running_interval(pod) for pod in step_pods])
    pickups = [e for e in dagster.webserver.run_events(run_id) if "picked up by Celery" in (e.message or "")]

    assert len(step_pods) == FAN_OUT_WIDTH, f"expected {FAN_OUT_WIDTH} step pods, found {len(step_pods)}"
    assert len(pickups) == FAN_OUT_WIDTH, f"{len(pickups)} of {FAN_OUT_WIDTH} steps were picked up by a Celery worker"
    assert peak <= capacity, (
        f"{peak} step pods ran at once, more than the Celery workers' total concurrency {capacity}")
    print(f"celery capacity {capacity}: at most {peak} of {FAN_OUT_WIDTH} step pods ran at once")
