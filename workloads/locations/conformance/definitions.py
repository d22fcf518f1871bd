"""The suite's sample code location. Each copy of it is built into its own image under its own name,
so the suites can tell which location (and so which image) ran a run or a step."""

import hashlib
import os
import socket
import time
from pathlib import Path

from dagster import (
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    OpExecutionContext,
    Output,
    RetryPolicy,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    in_process_executor,
    job,
    op,
    schedule,
    sensor,
)
from dagster_celery_k8s import celery_k8s_job_executor
from dagster_k8s import execute_k8s_job, k8s_job_executor, k8s_job_op

# Written next to this file by the image recipe: the location this copy belongs to.
LOCATION = (Path(__file__).parent / "location.txt").read_text().strip() if (
    Path(__file__).parent / "location.txt").exists() else "unnamed"


@op
def ping(context: OpExecutionContext) -> None:
    """Reports where it ran: the location's name, the pod (hostname) and the image Dagster says it uses."""
    context.log.info(f"ping from location={LOCATION} host={socket.gethostname()} "
                     f"image={os.environ.get('DAGSTER_CURRENT_IMAGE', '')}")


# Env vars the suite sets on the code location (plain, from a ConfigMap, from a Secret, and from the location's
# own Secret). Their values are reported as hashes only: a secret's value must never appear in the event log.
REPORTED_ENV = ("DKC_PLAIN", "DKC_FROM_CONFIG_MAP", "DKC_FROM_SECRET", "DKC_LOCATION_ENV", "DKC_LOCATION_SECRET")


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


# A held op waits, without a fixed sleep, until the test releases it by creating a suspended Job of this name
# in the run's namespace; so a chaos test decides exactly when the run may finish. A Job, because the service
# account the official chart gives run and step pods may read Jobs and pods, and nothing else (no ConfigMaps).
# Suspended, so it never makes a pod.
RELEASE_JOB = "dkc-release-{run_id}"
# The op logs this (into the run's event log) once it is watching: the test's proof that the run holds.
HOLDING_MESSAGE = "dkc: holding until Job {namespace}/{name} exists"
HOLD_DEADLINE_SECONDS = 900


@op
def hold(context: OpExecutionContext) -> None:
    """Blocks until Job dkc-release-<run_id> exists (watched), or fails after a deadline.

    It reads before it says it holds: a pod that may not read Jobs fails here with the API's own error."""
    from kubernetes import client, config, watch

    config.load_incluster_config()
    namespace = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace").read_text().strip()
    name = RELEASE_JOB.format(run_id=context.run_id)
    batch = client.BatchV1Api()
    deadline = time.monotonic() + HOLD_DEADLINE_SECONDS
    announced = False
    while time.monotonic() < deadline:
        listed = batch.list_namespaced_job(namespace, field_selector=f"metadata.name={name}")
        if listed.items:
            context.log.info(f"released by Job {namespace}/{name}")
            return
        if not announced:
            context.log.info(HOLDING_MESSAGE.format(namespace=namespace, name=name))
            announced = True
        try:
            # A watch may end early (apiserver restart, expired version): then list again, until the deadline.
            for _event in watch.Watch().stream(batch.list_namespaced_job, namespace,
                                               field_selector=f"metadata.name={name}",
                                               resource_version=listed.metadata.resource_version,
                                               timeout_seconds=max(1, int(deadline - time.monotonic()))):
                context.log.info(f"released by Job {namespace}/{name}")
                return
        except client.ApiException as exc:
            if exc.status != 410:  # 410: the version expired, list again
                raise
    raise RuntimeError(f"not released within {HOLD_DEADLINE_SECONDS}s (Job {namespace}/{name} never appeared)")


@job(description="Holds until released by the test, multiprocess executor.")
def hold_multiprocess() -> None:
    hold()


@job(executor_def=k8s_job_executor, description="Holds until released by the test, step in its own Job.")
def hold_k8s() -> None:
    hold()


@job(executor_def=celery_k8s_job_executor, description="Holds until released by the test, step through Celery.")
def hold_celery() -> None:
    hold()


@op(retry_policy=RetryPolicy(max_retries=2))
def flaky(context: OpExecutionContext) -> None:
    """Fails its first attempt on purpose (deterministically, by attempt number) and succeeds on the retry."""
    context.log.info(f"attempt {context.retry_number} on host={socket.gethostname()}")
    if context.retry_number == 0:
        raise RuntimeError("dkc: the first attempt of flaky fails on purpose")


@job(description="An op with a RetryPolicy that fails once, multiprocess executor.")
def flaky_multiprocess() -> None:
    flaky()


@job(executor_def=k8s_job_executor, description="An op with a RetryPolicy that fails once, step in its own Job.")
def flaky_k8s() -> None:
    flaky()


@job(executor_def=celery_k8s_job_executor, description="An op with a RetryPolicy that fails once, through Celery.")
def flaky_celery() -> None:
    flaky()


@op
def broken(context: OpExecutionContext) -> None:
    """Always fails, so that the run fails and the daemon's run retries have something to retry."""
    raise RuntimeError(f"dkc: broken always fails (run {context.run_id})")


@job(description="A run that always fails, multiprocess executor.")
def broken_multiprocess() -> None:
    broken()


@job(executor_def=k8s_job_executor, description="A run that always fails, step in its own Job.")
def broken_k8s() -> None:
    broken()


@job(executor_def=celery_k8s_job_executor, description="A run that always fails, through Celery.")
def broken_celery() -> None:
    broken()


# The program an external job runs: one stdout line with what its process sees (env var hashes, the
# location whose code is baked into its image), a marker the suites find in pod logs and in Dagster.
EXTERNAL_MARKER = "DKC-EXTERNAL-STDOUT"
EXTERNAL_PROGRAM = f"""
import hashlib, json, os, pathlib, socket, sys
seen = {{"env " + name: hashlib.sha256(os.environ[name].encode()).hexdigest() if name in os.environ else "unset"
         for name in {REPORTED_ENV!r}}}
marks = sorted(pathlib.Path("/opt/dagster/app").glob("*/location.txt"))
seen["location"] = marks[0].read_text().strip() if marks else "none"
seen["hostname"] = socket.gethostname()
print("{EXTERNAL_MARKER} " + json.dumps(seen, sort_keys=True), flush=True)
print("{EXTERNAL_MARKER} on stderr", file=sys.stderr, flush=True)
"""


@op(config_schema={"image": str})
def execute_external_job(context: OpExecutionContext) -> None:
    """Runs the external program in its own Kubernetes Job with ``execute_k8s_job``, in the given image."""
    execute_k8s_job(context, image=context.op_config["image"], command=["python3", "-c", EXTERNAL_PROGRAM])


def external_jobs_run_config(image: str) -> dict:
    """Run config for the external_jobs jobs: both kinds of external job run ``image``."""
    return {"ops": {"k8s_job_op": {"config": {"image": image, "command": ["python3", "-c", EXTERNAL_PROGRAM]}},
                    "execute_external_job": {"config": {"image": image}}}}


@job(description="Both kinds of external job (k8s_job_op, execute_k8s_job), multiprocess executor.")
def external_jobs_multiprocess() -> None:
    k8s_job_op()
    execute_external_job()


@job(executor_def=k8s_job_executor, description="Both kinds of external job, each op in its own step Job.")
def external_jobs_k8s() -> None:
    k8s_job_op()
    execute_external_job()


@job(executor_def=celery_k8s_job_executor, description="Both kinds of external job, ops through Celery.")
def external_jobs_celery() -> None:
    k8s_job_op()
    execute_external_job()


# Kubernetes settings through tags: the job's tag overrides the instance's resources for its pods, the op's
# tag annotates the pod of its step. The suites compare pod specs against these values.
OP_TAG_ANNOTATION = "dkc.dagster.io/op-tag"
JOB_TAG_RESOURCES = {"requests": {"cpu": "20m", "memory": "80Mi"}, "limits": {"memory": "3Gi"}}
JOB_TAGS = {"dagster-k8s/config": {"container_config": {"resources": JOB_TAG_RESOURCES}}}


@op(tags={"dagster-k8s/config": {"pod_template_spec_metadata": {"annotations": {OP_TAG_ANNOTATION: "reached"}}}})
def tagged(context: OpExecutionContext) -> None:
    """Carries an op tag for its step pod; does nothing else."""
    context.log.info(f"tagged op on host={socket.gethostname()}")


@job(tags=JOB_TAGS, description="Job and op tags with Kubernetes settings, multiprocess executor.")
def tagged_multiprocess() -> None:
    tagged()


@job(tags=JOB_TAGS, executor_def=k8s_job_executor, description="Job and op tags with Kubernetes settings, step Jobs.")
def tagged_k8s() -> None:
    tagged()


@job(tags=JOB_TAGS, executor_def=celery_k8s_job_executor,
     description="Job and op tags with Kubernetes settings, steps through Celery.")
def tagged_celery() -> None:
    tagged()


# Fan-out: independent steps that each take a few seconds, so that steps which could run at once do.
FAN_OUT_WIDTH = 6
FAN_OUT_STEP_SECONDS = 4


def _busy_op(index: int):
    @op(name=f"busy_{index}")
    def busy(context: OpExecutionContext) -> None:
        """Stays busy for a fixed time so that its step pod's lifetime can be compared with the others'."""
        context.log.info(f"busy_{index} on host={socket.gethostname()}")
        time.sleep(FAN_OUT_STEP_SECONDS)  # poll: not a wait; a fixed busy time is what this workload is

    return busy


BUSY_OPS = [_busy_op(index) for index in range(FAN_OUT_WIDTH)]


@job(executor_def=celery_k8s_job_executor, description="Independent steps at once, through Celery.")
def fan_out_celery() -> None:
    for busy in BUSY_OPS:
        busy()


@job(description="One op, multiprocess executor: everything runs in the run pod.")
def ping_multiprocess() -> None:
    ping()


@job(executor_def=k8s_job_executor, description="One op, each step in its own Kubernetes Job.")
def ping_k8s() -> None:
    ping()


@job(executor_def=celery_k8s_job_executor, description="One op, steps go through Celery into step Jobs.")
def ping_celery() -> None:
    ping()


# C20: memory taken by the run worker itself (in_process executor: the op runs in the run worker's process) until
# the kernel kills it; the test gives the run pod a small memory limit.
HOG_JOB = "hog_in_run_worker"
HOG_CHUNK = 32 * 1024 * 1024


@op
def hog(context: OpExecutionContext) -> None:
    """Allocates and touches memory until the process is killed (never returns while a limit holds)."""
    chunks = []
    context.log.info("dkc: taking memory until the run worker is killed")
    while True:
        chunk = bytearray(HOG_CHUNK)
        chunk[::4096] = b"\x01" * (HOG_CHUNK // 4096)  # every page touched: resident, not only reserved
        chunks.append(chunk)


@job(name=HOG_JOB, executor_def=in_process_executor,
     description="Takes memory in the run worker's own process until it is OOMKilled.")
def hog_in_run_worker() -> None:
    hog()


# The daemon's own work, to see it resume after a restart: a sensor and a schedule that tick and skip
# (they launch nothing, so they cost a tick each and never disturb the suites' runs).
SENSOR_NAME = "dkc_tick_sensor"
SCHEDULE_NAME = "dkc_tick_schedule"


@sensor(name=SENSOR_NAME, job=ping_multiprocess, minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING)
def tick_sensor(context: SensorEvaluationContext) -> SkipReason:
    return SkipReason("dkc: the sensor ticked; nothing to launch")


@schedule(name=SCHEDULE_NAME, job=ping_multiprocess, cron_schedule="* * * * *",
          default_status=DefaultScheduleStatus.RUNNING)
def tick_schedule(context: ScheduleEvaluationContext) -> SkipReason:
    return SkipReason("dkc: the schedule ticked; nothing to launch")


defs = Definitions(jobs=[ping_multiprocess, ping_k8s, ping_celery, report_multiprocess, report_k8s, report_celery,
                         hold_multiprocess, hold_k8s, hold_celery, flaky_multiprocess, flaky_k8s, flaky_celery,
                         broken_multiprocess, broken_k8s, broken_celery, hog_in_run_worker,
                         external_jobs_multiprocess, external_jobs_k8s, external_jobs_celery,
                         tagged_multiprocess, tagged_k8s, tagged_celery, fan_out_celery],
                   sensors=[tick_sensor], schedules=[tick_schedule])
