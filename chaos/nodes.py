"""A node drained under a run (C30): the drain-node experiment, the proof that it cordoned the node and evicted
the run's pods, and putting the node back."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from chaos import run as chaos_run
from chaos.faults import FaultNotApplied
from common.record import attach_json, step
from observation.kube import wait_gone, why_no_pods

EXPERIMENT = "drain-node.yaml"
ACTION = "drain-the-node"


@dataclass(frozen=True)
class DrainedNode:
    """Proof of a drain: the node is cordoned and the pods it ran are gone; when the drain began (epoch s: it
    evicts at once, then waits for the pods to go, in 10 s steps)."""

    node: str
    evicted: list[str]  # namespace/name of every pod of the namespace that was on the node
    started_at: float


def pods_on(core: client.CoreV1Api, node: str, namespace: str) -> list[client.V1Pod]:
    return core.list_namespaced_pod(namespace, field_selector=f"spec.nodeName={node}").items


def drain(core: client.CoreV1Api, node: str, must_evict: list[client.V1Pod], variables: dict[str, Any],
          journal: Path, kubeconfig: Path, context: str | None) -> DrainedNode:
    """Drain ``node`` with the experiment, then prove it: the node is cordoned and each of ``must_evict`` is gone."""
    namespace = variables["namespace"]
    before = [f"{namespace}/{pod.metadata.name}" for pod in pods_on(core, node, namespace)]
    outcome = chaos_run.run(chaos_run.EXPERIMENTS / EXPERIMENT, {**variables, "node": node}, journal, kubeconfig,
                            context)
    with step(f"Proof of fault: node {node} cordoned and the run's pods on it evicted"):
        drained = chaos_run.action_output(outcome, ACTION)
        if drained != [node]:
            raise FaultNotApplied(f"the experiment drained {drained}, not node {node}")
        if not core.read_node(node).spec.unschedulable:
            raise FaultNotApplied(f"node {node} is not cordoned after the drain")
        for pod in must_evict:
            wait_gone(core.read_namespaced_pod, "pod", pod.metadata.namespace, pod.metadata.name, pod.metadata.uid)
        proof = DrainedNode(node, before, chaos_run.activity_time(outcome, ACTION, "start"))
        attach_json("proof of fault", {"node": node, "cordoned": True, "pods on it before": before,
                                       "gone": [pod.metadata.name for pod in must_evict]})
    return proof


def uncordon(core: client.CoreV1Api, node: str) -> None:
    core.patch_node(node, {"spec": {"unschedulable": None}})


@contextmanager
def labelled(core: client.CoreV1Api, node: str, labels: dict[str, str]) -> Iterator[None]:
    """``node`` carries ``labels`` for the block (none: nothing to do); afterwards the labels it had are back."""
    had = core.read_node(node).metadata.labels or {}
    if labels:
        core.patch_node(node, {"metadata": {"labels": labels}})
    try:
        yield
    finally:
        if labels:
            core.patch_node(node, {"metadata": {"labels": {key: had.get(key) for key in labels}}})


def schedulable_nodes(core: client.CoreV1Api) -> list[str]:
    """Ready, uncordoned nodes without a NoSchedule/NoExecute taint: where ordinary pods may go."""
    return sorted(node.metadata.name for node in core.list_node().items if not why_no_pods(node))
