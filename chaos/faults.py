"""The control-plane faults the HA suites apply: which experiment kills which pods, and how to prove it did."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from chaos import run as chaos_run
from observation.kube import pod_uids, wait_replacement_ready
from reports.evidence import attach_json, step

WEBSERVER = "component=dagster-webserver"
DAEMON = "component=dagster-daemon"


def code_location(name: str) -> str:
    return f"component=user-deployments,deployment={name}"


@dataclass(frozen=True)
class Fault:
    """An experiment file, the action in it that applies the fault, and the pods (by selector) it must replace."""

    name: str
    experiment: str
    action: str
    selectors: tuple[str, ...]
    variables: dict[str, str] = field(default_factory=dict)


WEBSERVER_FAULT = Fault("webserver", "kill-webserver.yaml", "terminate-a-webserver-pod", (WEBSERVER,))
DAEMON_FAULT = Fault("daemon", "kill-daemon.yaml", "terminate-the-daemon-pod", (DAEMON,))


def celery_worker_fault(pod_name: str, worker_pods: str, workers: str) -> Fault:
    """Kill the Celery worker pod ``pod_name`` (e.g. the one running a step), one of ``worker_pods`` (a selector)
    of the Deployment ``workers``."""
    return Fault("celery-worker", "kill-celery-worker.yaml", "terminate-a-celery-worker-pod", (worker_pods,),
                 {"pod_name": f"^{pod_name}$", "worker_selector": worker_pods, "workers": workers})


def control_plane_faults(location: str, all_locations: list[str]) -> list[Fault]:
    """Kill the webserver, the daemon, ``location``'s server: each alone, then all of them (every location)."""
    return [
        WEBSERVER_FAULT,
        DAEMON_FAULT,
        Fault("code-location", "kill-code-location.yaml", "terminate-the-code-location-pod",
              (code_location(location),), {"location": location}),
        Fault("all-three", "kill-control-plane.yaml", "terminate-control-plane-pods",
              (WEBSERVER, DAEMON, *(code_location(name) for name in all_locations)), {"location": location}),
    ]


@dataclass(frozen=True)
class AppliedFault:
    """Proof that a fault happened: the pods it killed, their Ready replacements, and how long that took."""

    killed: list[str]
    replacements: dict[str, str]  # selector -> name of the new Ready pod
    recovered_seconds: float
    experiment_status: str
    journal: Path


class FaultNotApplied(AssertionError):
    """The experiment ran but the fault cannot be proven: never a pass."""


def apply(fault: Fault, core: client.CoreV1Api, namespace: str, journal: Path, kubeconfig: Path,
          context: str | None, recovery_timeout: float = 240,
          variables: Mapping[str, str] | None = None) -> AppliedFault:
    """Run the fault's experiment, then prove it: the killed pods were ours and each has a new Ready pod.

    ``variables`` are more ``--var`` values, e.g. where the deployment's webserver is (Deployment.chaos_variables).
    """
    before = {selector: pod_uids(core, namespace, selector) for selector in fault.selectors}
    started = time.monotonic()
    outcome = chaos_run.run(chaos_run.EXPERIMENTS / fault.experiment,
                            {**(variables or {}), "namespace": namespace, "recovery_timeout": recovery_timeout,
                             **fault.variables}, journal, kubeconfig, context)
    with step(f"Proof of fault: pods of {', '.join(fault.selectors)} killed and replaced by new Ready pods"):
        applied = _prove(fault, core, namespace, before, outcome, journal, started, recovery_timeout)
        attach_json("proof of fault", {
            "killed": applied.killed, "replacements": applied.replacements,
            "pods before": {selector: sorted(uids.values()) for selector, uids in before.items()},
            "replacement Ready after (s)": round(applied.recovered_seconds, 1),
            "experiment status": applied.experiment_status})
    return applied


def _prove(fault: Fault, core: client.CoreV1Api, namespace: str, before: dict[str, dict[str, str]],
           outcome: dict[str, Any], journal: Path, started: float, recovery_timeout: float) -> AppliedFault:
    killed = list(chaos_run.action_output(outcome, fault.action) or [])
    ours = {name for pods in before.values() for name in pods.values()}
    if not killed or not set(killed) <= ours:
        raise FaultNotApplied(f"fault {fault.name} not applied: the experiment terminated {killed or 'nothing'}, "
                              f"expected pods among {sorted(ours)}")
    replacements = {}
    for selector, uids in before.items():
        if not set(uids.values()) & set(killed):
            raise FaultNotApplied(f"fault {fault.name} not applied: no pod of {selector} was terminated ({killed})")
        pod = wait_replacement_ready(core, namespace, selector, set(uids), timeout=recovery_timeout)
        replacements[selector] = pod.metadata.name
    return AppliedFault(killed, replacements, time.monotonic() - started, outcome.get("status", "?"), journal)
