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

from common.waits import Observation, WaitTimeout, wait_for
from dagster_api import DagsterApiError, DagsterWebserver
from deploy.names import WEBSERVER
from deploy.settings import WEBSERVER_PORT

__all__ = ["code_location_loaded", "daemon_healthy", "run_status", "webserver_answers"]


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


def daemon_healthy(namespace: str = "dkc-k8s-job", service: str = WEBSERVER, port: int = WEBSERVER_PORT,
                   timeout: float = 0) -> bool:
    """True when every required daemon reports a fresh heartbeat (waiting up to ``timeout`` seconds)."""
    webserver = _webserver(namespace, service, port)

    def look() -> Observation[bool]:
        unhealthy = [s.daemon_type for s in webserver.daemon_statuses() if s.required and not s.healthy]
        return Observation(not unhealthy, f"unhealthy: {', '.join(unhealthy) or 'none'}", True)

    try:
        return bool(wait_for(f"the daemons in {namespace} to be healthy", look, max(float(timeout), 0.001), 2.0))
    except WaitTimeout:
        return False
    except DagsterApiError as exc:
        raise ActivityFailed(f"cannot read daemon health in {namespace}: {exc}") from exc


def code_location_loaded(location: str = "alpha", namespace: str = "dkc-k8s-job", service: str = WEBSERVER,
                         port: int = WEBSERVER_PORT, timeout: float = 0) -> bool:
    """True when the webserver shows ``location`` loaded without error (waiting up to ``timeout`` seconds).

    Never asks for a reload: whether the webserver reconnects to a replaced code server by itself is the point.
    """
    try:
        _webserver(namespace, service, port).wait_for_location_loaded(location, max(float(timeout), 0.001))
    except (DagsterApiError, WaitTimeout):
        return False
    return True


def run_status(run_id: str, namespace: str = "dkc-k8s-job", service: str = WEBSERVER,
               port: int = WEBSERVER_PORT) -> str:
    """The run's status (QUEUED, STARTED, SUCCESS, FAILURE, ...)."""
    try:
        return _webserver(namespace, service, port).run_status(run_id).value
    except DagsterApiError as exc:
        raise ActivityFailed(f"cannot read the status of run {run_id} in {namespace}: {exc}") from exc
