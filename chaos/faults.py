"""The control-plane faults the HA suites apply: which experiment kills which pods, and how to prove it did."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from chaos import run as chaos_run
from common.record import attach_json, step
from observation.kube import pod_uids, pods_selector, wait_replacement_ready


@dataclass(frozen=True)
class Fault:
    """An experiment file, the actions in it that apply the fault, and the pods (by selector) it must replace."""

    name: str
    experiment: str
    actions: tuple[str, ...]
    selectors: tuple[str, ...]
    variables: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ControlPlane:
    """The pods of each control-plane part, as selectors read from their Deployments' own matchLabels (so a
    deployment found with --webserver-selector & co. is hit exactly where discovery found it)."""

    webserver: str
    daemon: str
    locations: dict[str, str]  # location name -> its server's pods

    @classmethod
    def of(cls, apps: client.AppsV1Api, namespace: str, webserver: str, daemon: str,
           locations: Mapping[str, str]) -> ControlPlane:
        """From the Deployments' names (``locations``: location name -> its Deployment)."""
        return cls(pods_selector(apps, namespace, webserver), pods_selector(apps, namespace, daemon),
                   {name: pods_selector(apps, namespace, deployment) for name, deployment in locations.items()})


CONTROL_PLANE_FAULTS = ("webserver", "daemon", "code-location", "all-three")


def webserver_fault(parts: ControlPlane) -> Fault:
    return Fault("webserver", "kill-webserver.yaml", ("terminate-a-webserver-pod",), (parts.webserver,),
                 {"webserver_selector": parts.webserver})


def daemon_fault(parts: ControlPlane) -> Fault:
    return Fault("daemon", "kill-daemon.yaml", ("terminate-the-daemon-pod",), (parts.daemon,),
                 {"daemon_selector": parts.daemon})


def control_plane_fault(name: str, parts: ControlPlane, location: str) -> Fault:
    """Kill the webserver, the daemon, ``location``'s server, or all of them (every location in ``parts``)."""
    if name == "webserver":
        return webserver_fault(parts)
    if name == "daemon":
        return daemon_fault(parts)
    if name == "code-location":
        pods = parts.locations[location]
        return Fault("code-location", "kill-code-location.yaml", ("terminate-the-code-location-pod",), (pods,),
                     {"location": location, "location_selector": pods})
    if name == "all-three":
        every_location = merge_selectors(list(parts.locations.values()))
        return Fault("all-three", "kill-control-plane.yaml",
                     ("terminate-the-webserver-pods", "terminate-the-daemon-pods", "terminate-the-code-location-pods"),
                     (parts.webserver, parts.daemon, *parts.locations.values()),
                     {"location": location, "webserver_selector": parts.webserver, "daemon_selector": parts.daemon,
                      "locations_selector": every_location})
    raise ValueError(f"unknown control-plane fault {name!r}: choose one of {', '.join(CONTROL_PLANE_FAULTS)}")


def merge_selectors(selectors: list[str]) -> str:
    """One selector for the pods of several equality selectors that differ in one key's value, e.g. two code
    locations' ``...,deployment=alpha`` and ``...,deployment=beta`` -> ``...,deployment in (alpha,beta)``."""
    terms = [term for selector in selectors for term in selector.split(",")]
    if any(term.count("=") != 1 or " " in term or "!" in term for term in terms):  # a set-based selector
        if len(set(selectors)) == 1:
            return selectors[0]
        raise ValueError(f"cannot select the pods of {selectors} with one label selector: only key=value selectors "
                         "merge")
    parsed = [dict(pair.split("=", 1) for pair in selector.split(",")) for selector in selectors]
    keys = set(parsed[0])
    if any(set(labels) != keys for labels in parsed):
        raise ValueError(f"cannot select the pods of {selectors} with one label selector: their label keys differ")
    parts = []
    for key in sorted(keys):
        values = sorted({labels[key] for labels in parsed})
        parts.append(f"{key}={values[0]}" if len(values) == 1 else f"{key} in ({','.join(values)})")
    return ",".join(parts)


def celery_worker_fault(pod_name: str, worker_pods: str, workers: str, grace_period: int = 0) -> Fault:
    """Kill the Celery worker pod ``pod_name`` (e.g. the one running a step), one of ``worker_pods`` (a selector)
    of the Deployment ``workers``; ``grace_period`` -1 deletes it as a rollout or a drain does (the pod's own)."""
    return Fault("celery-worker", "kill-celery-worker.yaml", ("terminate-a-celery-worker-pod",), (worker_pods,),
                 {"pod_name": f"^{pod_name}$", "worker_selector": worker_pods, "workers": workers,
                  "grace_period": grace_period})


@dataclass(frozen=True)
class AppliedFault:
    """Proof that a fault happened: the pods it killed, their Ready replacements, and how long that took."""

    killed: list[str]
    replacements: dict[str, str]  # selector -> name of the new Ready pod
    recovered_seconds: float
    experiment_status: str
    journal: Path


class FaultNotApplied(Exception):
    """The experiment ran but the fault cannot be proven: never a pass, and not an AssertionError, so that a strict
    xfail (raises=AssertionError) never takes it for the known product defect."""


def experiment_variables(fault: Fault, namespace: str, recovery_timeout: float,
                         variables: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``--var`` values the fault's experiment runs with: ``variables`` (where the deployment's webserver is),
    the namespace and recovery timeout, then the fault's own (the selectors of the pods it kills)."""
    return {**(variables or {}), "namespace": namespace, "recovery_timeout": recovery_timeout, **fault.variables}


def apply(fault: Fault, core: client.CoreV1Api, namespace: str, journal: Path, kubeconfig: Path,
          context: str | None, recovery_timeout: float = 240,
          variables: Mapping[str, str] | None = None) -> AppliedFault:
    """Run the fault's experiment, then prove it: the killed pods were ours and each has a new Ready pod.

    ``variables`` are more ``--var`` values, e.g. where the deployment's webserver is (Deployment.chaos_variables).
    """
    before = {selector: pod_uids(core, namespace, selector) for selector in fault.selectors}
    started = time.monotonic()
    outcome = chaos_run.run(chaos_run.EXPERIMENTS / fault.experiment,
                            experiment_variables(fault, namespace, recovery_timeout, variables),
                            journal, kubeconfig, context)
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
    killed = [pod for action in fault.actions for pod in chaos_run.action_output(outcome, action) or []]
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
