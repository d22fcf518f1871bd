"""Faults on a run's workers while its op is held, each proven gone: the run pod killed or its Job deleted (C14),
a step pod killed (C21)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from chaos import run as chaos_run
from chaos.faults import FaultNotApplied
from observation.kube import wait_gone


@dataclass(frozen=True)
class RunWorkerFault:
    """An experiment that removes a run's worker, and the action in it whose output names what it removed."""

    name: str
    experiment: str
    action: str
    deletes_job: bool = False  # else it kills the pod (the run's, or a step's)

    def apply(self, core: client.CoreV1Api, batch: client.BatchV1Api, pod: client.V1Pod, job: client.V1Job,
              variables: dict[str, Any], journal_path: Path, kubeconfig: Path, context: str | None) -> float:
        """Run the experiment, prove it removed exactly ``pod`` (or its ``job``) and that the pod is gone; returns
        when the fault was applied (epoch seconds, from the journal)."""
        namespace = pod.metadata.namespace
        journal = chaos_run.run(chaos_run.EXPERIMENTS / self.experiment, variables, journal_path, kubeconfig, context)
        output = chaos_run.action_output(journal, self.action)
        if not self.deletes_job:
            if output != [pod.metadata.name]:
                raise FaultNotApplied(f"the experiment terminated {output}, not the pod {pod.metadata.name}")
        else:
            if output != {"name": job.metadata.name, "uid": job.metadata.uid}:
                raise FaultNotApplied(f"the experiment deleted {output}, not the run Job {job.metadata.name} "
                                      f"(uid {job.metadata.uid})")
            wait_gone(batch.read_namespaced_job, "Job", namespace, job.metadata.name, job.metadata.uid)
        wait_gone(core.read_namespaced_pod, "pod", namespace, pod.metadata.name, pod.metadata.uid)
        return finished_at(journal, self.action)


def finished_at(journal: dict[str, Any], action: str) -> float:
    """When the fault was applied, as the journal recorded it (epoch seconds)."""
    return chaos_run.activity_time(journal, action, "end")


RUN_POD_KILLED = RunWorkerFault("run-pod-killed", "kill-run-pod.yaml", "terminate-the-run-pod")
RUN_JOB_DELETED = RunWorkerFault("run-job-deleted", "delete-run-job.yaml", "delete-the-run-job", deletes_job=True)
RUN_WORKER_FAULTS = (RUN_POD_KILLED, RUN_JOB_DELETED)
STEP_POD_KILLED = RunWorkerFault("step-pod-killed", "kill-step-pod.yaml", "terminate-the-step-pod")
