"""Steady-state probes for Dagster: does the webserver answer, is the daemon healthy, what is a run doing.

Plain functions with defaulted keyword arguments, usable from an experiment file and from pytest.
Waiting probes take a timeout and wait with a deadline, so a hypothesis checked right after a fault
gives the component the time it is allowed to recover.
"""

from __future__ import annotations

import os
from pathlib import Path

from chaoslib.exceptions import ActivityFailed
from kubernetes import config

from deploy.graphql import DagsterApiError, DagsterWebserver
from deploy.settings import WEBSERVER, WEBSERVER_PORT
from observation.waits import WaitTimeout

__all__ = ["daemon_healthy", "run_status", "webserver_answers"]


def _webserver(namespace: str, service: str, port: int) -> DagsterWebserver:
    kubeconfig = os.environ.get("KUBECONFIG", str(Path.home() / ".kube" / "config")).split(os.pathsep)[0]
    api = config.new_client_from_config(config_file=kubeconfig, context=os.environ.get("KUBERNETES_CONTEXT"))
    return DagsterWebserver.through_service_proxy(api, namespace, service, port)


def webserver_answers(namespace: str = "dkc-k8s-job", service: str = WEBSERVER, port: int = WEBSERVER_PORT,
                      timeout: float = 0) -> bool:
    """True when the webserver answers GraphQL through its Service (waiting up to ``timeout`` seconds)."""
    webserver = _webserver(namespace, service, port)
    try:
        if float(timeout) > 0:
            webserver.wait_until_answering(float(timeout))
        else:
            webserver.version()
    except (DagsterApiError, WaitTimeout):
        return False
    return True


def daemon_healthy(namespace: str = "dkc-k8s-job", service: str = WEBSERVER, port: int = WEBSERVER_PORT) -> bool:
    """True when every required daemon reports a fresh heartbeat."""
    try:
        statuses = _webserver(namespace, service, port).daemon_statuses()
    except DagsterApiError as exc:
        raise ActivityFailed(f"cannot read daemon health in {namespace}: {exc}") from exc
    return all(status.healthy for status in statuses if status.required)


def run_status(run_id: str, namespace: str = "dkc-k8s-job", service: str = WEBSERVER,
               port: int = WEBSERVER_PORT) -> str:
    """The run's status (QUEUED, STARTED, SUCCESS, FAILURE, ...)."""
    try:
        return _webserver(namespace, service, port).run_status(run_id).value
    except DagsterApiError as exc:
        raise ActivityFailed(f"cannot read the status of run {run_id} in {namespace}: {exc}") from exc
