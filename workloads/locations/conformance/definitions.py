"""The suite's sample code location. Each copy of it is built into its own image under its own name,
so the suites can tell which location (and so which image) ran a run or a step."""

import os
import socket
from pathlib import Path

from dagster import Definitions, OpExecutionContext, job, op
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


@job(description="One op, multiprocess executor: everything runs in the run pod.")
def ping_multiprocess() -> None:
    ping()


@job(executor_def=k8s_job_executor, description="One op, each step in its own Kubernetes Job.")
def ping_k8s() -> None:
    ping()


@job(executor_def=celery_k8s_job_executor, description="One op, steps go through Celery into step Jobs.")
def ping_celery() -> None:
    ping()


defs = Definitions(jobs=[ping_multiprocess, ping_k8s, ping_celery])
