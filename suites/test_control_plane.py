"""C1 and C2, first cut: the control plane is chart-shaped and a run launched over GraphQL becomes a
Kubernetes Job `dagster-run-<run_id>` that reaches Complete while Dagster reports SUCCESS."""

from __future__ import annotations

import pytest
import yaml

from deploy import names
from deploy.deployment import Deployment
from observation.kube import job_condition, job_summary, wait_job_finished

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster]

RUN_TIMEOUT = 240


@pytest.mark.c1
def test_control_plane_runs_as_deployments_and_the_instance_is_a_config_map(dagster: Deployment) -> None:
    deployments = {d.metadata.name: d for d in dagster.apps.list_namespaced_deployment(dagster.namespace).items}
    parts = dagster.settings.names
    expected = [parts.webserver, parts.daemon, *(loc.service for loc in dagster.settings.code_locations)]
    for name in expected:
        assert name in deployments, f"no Deployment {name} in {dagster.namespace}: has {sorted(deployments)}"
        ready = deployments[name].status.ready_replicas or 0
        assert ready >= 1, f"Deployment {name} has {ready} ready replicas"

    instance = dagster.core.read_namespaced_config_map(parts.instance_config_map, dagster.namespace)
    launcher = yaml.safe_load(instance.data["dagster.yaml"])["run_launcher"]["class"]
    expected_launcher = "CeleryK8sRunLauncher" if dagster.settings.uses_celery else "K8sRunLauncher"
    assert launcher == expected_launcher, f"instance ConfigMap names {launcher}, expected {expected_launcher}"

    unhealthy = [d for d in dagster.webserver.daemon_statuses() if d.required and not d.healthy]
    assert not unhealthy, f"required daemons not healthy: {unhealthy}"


@pytest.mark.c2
def test_a_run_is_a_kubernetes_job_that_completes(dagster: Deployment) -> None:
    run_id = dagster.run_to_success("ping", timeout=RUN_TIMEOUT)

    run_job = wait_job_finished(dagster.batch, dagster.namespace, names.run_job_name(run_id), timeout=60)
    assert job_condition(run_job, "Complete"), f"run Job did not complete: {job_summary(run_job)}"
    assert run_job.spec.backoff_limit == 0, f"run Job has backoffLimit {run_job.spec.backoff_limit}, expected 0"
    container = run_job.spec.template.spec.containers[0]
    assert container.args[:3] == ["dagster", "api", "execute_run"], f"run pod runs {container.args[:3]}"

    run_jobs = dagster.batch.list_namespaced_job(dagster.namespace, label_selector=names.run_selector(run_id)).items
    step_jobs = [j for j in run_jobs if j.metadata.name.startswith(names.STEP_JOB_PREFIX)]
    if dagster.settings.combination == "k8s-multiprocess":
        assert not step_jobs, f"multiprocess run made step Jobs: {[j.metadata.name for j in step_jobs]}"
    else:
        assert step_jobs, f"no dagster-step-<hash> Job was made for run {run_id}"
        assert all(job_condition(j, "Complete") for j in step_jobs), [job_summary(j) for j in step_jobs]
    if dagster.settings.uses_celery:
        assert_steps_went_through_celery(dagster, run_id)


def assert_steps_went_through_celery(dagster: Deployment, run_id: str) -> None:
    """Each step was picked up by one of our Celery worker pods (the executor reports which)."""
    workers = {p.metadata.name for p in dagster.core.list_namespaced_pod(
        dagster.namespace, label_selector=dagster.celery_worker_pods()).items}
    pickups = [e for e in dagster.webserver.run_events(run_id) if "picked up by Celery" in (e.message or "")]
    assert pickups, f"no step of run {run_id} was picked up by a Celery worker"
    for event in pickups:
        pod = event.metadata.get("Celery worker Kubernetes Pod name")
        assert pod in workers, f"step {event.step_key} was picked up by {pod!r}, not one of the workers {workers}"
