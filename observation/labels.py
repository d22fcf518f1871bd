"""Dagster's own labels and names on what it launches in Kubernetes (dagster_k8s: launcher.py, executor.py,
ops/k8s_job_op.py via job.py), and the selectors made of them: the one place they are spelled.

The Helm chart's labels (release, components) are deploy/names.py's, a room above; it re-exports these.
"""

from __future__ import annotations

__all__ = ["DAGSTER_COMPONENT_LABEL", "EXTERNAL_JOB_COMPONENT", "JOB_NAME_LABEL", "OP_LABEL", "RUN_ID_LABEL",
           "RUN_JOB_PREFIX", "RUN_WORKER_COMPONENT", "STEP_JOB_PREFIX", "STEP_LABELS", "STEP_WORKER_COMPONENT",
           "dagster_pod", "run_job_name", "run_job_pods", "run_selector"]

RUN_ID_LABEL = "dagster/run-id"  # on the Jobs and pods of a run: run worker, steps, external jobs
OP_LABEL = "dagster/op"
STEP_LABELS = (OP_LABEL, "dagster/step-key")
DAGSTER_COMPONENT_LABEL = "app.kubernetes.io/component"
RUN_WORKER_COMPONENT = "run_worker"
STEP_WORKER_COMPONENT = "step_worker"
EXTERNAL_JOB_COMPONENT = "k8s_job_op"  # on the Jobs and pods k8s_job_op and execute_k8s_job make
JOB_NAME_LABEL = "job-name"  # Kubernetes' own, on a Job's pods: how a run pod is found by its Job's name
RUN_JOB_PREFIX = "dagster-run-"
STEP_JOB_PREFIX = "dagster-step-"


def run_selector(run_id: str) -> str:
    """The Jobs and pods labelled with the run's id."""
    return f"{RUN_ID_LABEL}={run_id}"


def run_job_name(run_id: str) -> str:
    """The K8sRunLauncher's Job of a run (a resumed run's is this plus ``-<attempt>``)."""
    return f"{RUN_JOB_PREFIX}{run_id}"


def run_job_pods(run_id: str) -> str:
    """The pods of the run's Job, by the Job's name (a run pod may carry the run id only there)."""
    return f"{JOB_NAME_LABEL}={run_job_name(run_id)}"


def dagster_pod(labels: dict[str, str]) -> str | None:
    """What a pod Dagster launched is, in words a reader of the report knows ("run 1a2b3c4d", "step add_one",
    "external job"); "other" for a run's pod of another kind; None for a pod without a run id."""
    if RUN_ID_LABEL not in labels:
        return None
    kind = labels.get(DAGSTER_COMPONENT_LABEL)
    if kind == RUN_WORKER_COMPONENT:
        return f"run {labels[RUN_ID_LABEL][:8]}"
    if kind == STEP_WORKER_COMPONENT:
        step = next((labels[key] for key in STEP_LABELS if labels.get(key)), "step")
        return f"step {step}"
    if kind == EXTERNAL_JOB_COMPONENT:
        return "external job"
    return "other"
