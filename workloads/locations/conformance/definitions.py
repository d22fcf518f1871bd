"""The suite's sample code location. Each copy of it is built into its own image under its own name,
so the suites can tell which location (and so which image) ran a run or a step."""

import hashlib
import os
import socket
from pathlib import Path

from dagster import Definitions, OpExecutionContext, Output, job, op
from dagster_celery_k8s import celery_k8s_job_executor
from dagster_k8s import k8s_job_executor

# Written next to this file by the image recipe: the location this copy belongs to.
LOCATION = (Path(__file__).parent / "location.txt").read_text().strip() if (
    Path(__file__).parent / "location.txt").exists() else "unnamed"


@op
def ping(context: OpExecutionContext) -> None:
    """Reports where it ran: the location's name, the pod (hostname) and the image Dagster says it uses."""
    context.log.info(f"ping from location={LOCATION} host={socket.gethostname()} "
                     f"image={os.environ.get('DAGSTER_CURRENT_IMAGE', '')}")


# Env vars the suite sets on the code location (plain, from a ConfigMap, from a Secret). Their values are
# reported as hashes only: a secret's value must never appear in the event log.
REPORTED_ENV = ("DKC_PLAIN", "DKC_FROM_CONFIG_MAP", "DKC_FROM_SECRET")


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


@op
def report(context: OpExecutionContext) -> Output:
    """What this step's process sees, as output metadata: location, pod, image, pid, env var hashes."""
    metadata = {"location": LOCATION, "hostname": socket.gethostname(), "pid": os.getpid(),
                "image": os.environ.get("DAGSTER_CURRENT_IMAGE", ""), "step": context.op.name}
    for name in REPORTED_ENV:
        value = os.environ.get(name)
        metadata[f"env {name}"] = sha256(value) if value is not None else "unset"
    return Output(None, metadata=metadata)


@job(description="Reports what a step's process sees (env hashes, pod, image), default executor.")
def report_multiprocess() -> None:
    report()


@job(executor_def=k8s_job_executor, description="Reports what a step's process sees, each step in its own Job.")
def report_k8s() -> None:
    report()


@job(executor_def=celery_k8s_job_executor, description="Reports what a step's process sees, steps through Celery.")
def report_celery() -> None:
    report()


# A held op waits, without a fixed sleep, until the test releases it by creating this ConfigMap in the
# run's namespace; so a chaos test decides exactly when the run may finish.
RELEASE_CONFIG_MAP = "dkc-release-{run_id}"
HOLD_DEADLINE_SECONDS = 900


@op
def hold(context: OpExecutionContext) -> None:
    """Blocks until ConfigMap dkc-release-<run_id> exists (watched), or fails after a deadline."""
    from kubernetes import client, config, watch

    config.load_incluster_config()
    namespace = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip()
    name = RELEASE_CONFIG_MAP.format(run_id=context.run_id)
    core = client.CoreV1Api()
    context.log.info(f"holding until ConfigMap {namespace}/{name} exists")
    stream = watch.Watch().stream(core.list_namespaced_config_map, namespace,
                                  field_selector=f"metadata.name={name}", timeout_seconds=HOLD_DEADLINE_SECONDS)
    for _event in stream:
        context.log.info(f"released by ConfigMap {namespace}/{name}")
        return
    raise RuntimeError(f"not released within {HOLD_DEADLINE_SECONDS}s (ConfigMap {namespace}/{name} never appeared)")


@job(description="Holds until released by the test, multiprocess executor.")
def hold_multiprocess() -> None:
    hold()


@job(executor_def=k8s_job_executor, description="Holds until released by the test, step in its own Job.")
def hold_k8s() -> None:
    hold()


@job(executor_def=celery_k8s_job_executor, description="Holds until released by the test, step through Celery.")
def hold_celery() -> None:
    hold()


@job(description="One op, multiprocess executor: everything runs in the run pod.")
def ping_multiprocess() -> None:
    ping()


@job(executor_def=k8s_job_executor, description="One op, each step in its own Kubernetes Job.")
def ping_k8s() -> None:
    ping()


@job(executor_def=celery_k8s_job_executor, description="One op, steps go through Celery into step Jobs.")
def ping_celery() -> None:
    ping()


defs = Definitions(jobs=[ping_multiprocess, ping_k8s, ping_celery, report_multiprocess, report_k8s, report_celery,
                         hold_multiprocess, hold_k8s, hold_celery])
