"""Outages of what Dagster depends on (PostgreSQL, the Celery broker, a code location server): a restart (its pod
killed at once) or a stop (its Deployment at zero replicas for a while), each proven from the journal and the pods
before the outcome counts."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from chaos import run as chaos_run
from chaos.faults import FaultNotApplied
from common.record import attach_json, step
from observation.kube import pod_uids, wait_gone, wait_replacement_ready

RESTART_ACTION = "terminate-the-dependency-pod"
STOP_ACTION, START_ACTION = "stop-the-dependency", "start-the-dependency"
CLOCK_SKEW_SECONDS = 2.0  # the journal's clock (this machine) against the apiserver's timestamps


@dataclass(frozen=True)
class Outage:
    """A dependency taken away and given back: its Deployment and pods, and for how long it is stopped (0: a
    restart, which lasts as long as the new pod takes to be Ready)."""

    dependency: str  # e.g. "postgresql", "code-location-alpha"
    deployment: str
    selector: str
    stopped_seconds: int = 0

    @property
    def name(self) -> str:
        return f"{self.dependency}-{'stopped' if self.stopped_seconds else 'restarted'}"

    @property
    def experiment(self) -> str:
        return "stop-dependency.yaml" if self.stopped_seconds else "restart-dependency.yaml"

    def variables(self) -> dict[str, str | int]:
        if self.stopped_seconds:
            return {"dependency": self.deployment, "outage_seconds": self.stopped_seconds}
        return {"dependency_selector": self.selector}


@dataclass(frozen=True)
class AppliedOutage:
    """Proof that the dependency went away: its old pods, the new Ready one, and how long there was none."""

    old_pods: list[str]
    replacement: str
    down_seconds: float  # from the fault (kill or scale to zero) to the new pod Ready
    experiment_status: str
    journal: Path
    down_from: float = 0.0  # epoch seconds: the fault (the kill, or the scale to zero)
    back_from: float = 0.0  # epoch seconds: the dependency given back (the kill, or the scale to one)


def _ready_at(pod: client.V1Pod) -> float:
    ready = next((c for c in pod.status.conditions or [] if c.type == "Ready" and c.status == "True"), None)
    return ready.last_transition_time.timestamp() if ready and ready.last_transition_time else time.time()


def apply_outage(outage: Outage, core: client.CoreV1Api, namespace: str, journal_path: Path, kubeconfig: Path,
                 context: str | None, variables: Mapping[str, str], recovery_timeout: float = 240) -> AppliedOutage:
    """Run the outage's experiment, then prove it: every old pod is gone, the new one was made only after the
    dependency was started again (a stop) or killed (a restart), and it is Ready."""
    before = pod_uids(core, namespace, outage.selector)
    if not before:
        raise FaultNotApplied(f"no pod of {outage.dependency} ({outage.selector}) in {namespace} to take away")
    journal = chaos_run.run(chaos_run.EXPERIMENTS / outage.experiment,
                            {**variables, "namespace": namespace, "recovery_timeout": recovery_timeout,
                             **outage.variables()}, journal_path, kubeconfig, context)
    with step(f"Proof of fault: {outage.dependency} was away ({outage.name}) and is back with a new pod"):
        applied = _prove(outage, core, namespace, before, journal, journal_path, recovery_timeout)
        attach_json("proof of fault", {"old pods": applied.old_pods, "replacement": applied.replacement,
                                       "no Ready pod for (s)": round(applied.down_seconds, 1),
                                       "experiment status": applied.experiment_status})
    return applied


def _prove(outage: Outage, core: client.CoreV1Api, namespace: str, before: dict[str, str], journal: dict[str, Any],
           journal_path: Path, recovery_timeout: float) -> AppliedOutage:
    if outage.stopped_seconds:
        for action in (STOP_ACTION, START_ACTION):
            chaos_run.action_output(journal, action)  # raises unless it ran and succeeded
        down_from = chaos_run.activity_time(journal, STOP_ACTION, "start")
        back_from = chaos_run.activity_time(journal, START_ACTION, "start")
        if back_from - down_from < outage.stopped_seconds:
            raise FaultNotApplied(f"{outage.dependency} was started again {back_from - down_from:.0f}s after it was "
                                  f"stopped, not after {outage.stopped_seconds}s")
    else:
        killed = chaos_run.action_output(journal, RESTART_ACTION) or []
        if not killed or not set(killed) <= set(before.values()):
            raise FaultNotApplied(f"the experiment terminated {killed or 'nothing'}, not a pod of {outage.dependency} "
                                  f"({sorted(before.values())})")
        down_from = back_from = chaos_run.activity_time(journal, RESTART_ACTION, "start")
    for uid, name in before.items():
        wait_gone(core.read_namespaced_pod, "pod", namespace, name, uid, timeout=recovery_timeout)
    new = wait_replacement_ready(core, namespace, outage.selector, set(before), timeout=recovery_timeout)
    created = new.metadata.creation_timestamp.timestamp()
    if created < back_from - CLOCK_SKEW_SECONDS:
        raise FaultNotApplied(f"the new {outage.dependency} pod {new.metadata.name} was made before the dependency "
                              f"was given back: it was never away")
    return AppliedOutage(sorted(before.values()), new.metadata.name, _ready_at(new) - down_from,
                         journal.get("status", "?"), journal_path, down_from, back_from)
