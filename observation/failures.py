"""Why a run did not do what a test waited for, in one line: the first error of Dagster's event log and what
Kubernetes says about the run's Jobs and pods (waiting/terminated reasons, unschedulable, failed creates).

Read when a wait has already failed, so nothing here waits, and nothing here may hide the original failure:
what cannot be read is said as such.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from kubernetes import client

from dagster_api import RunEvent
from observation.kube import job_summary
from observation.labels import JOB_NAME_LABEL, run_job_pods, run_selector
from observation.snapshot import pods_of_run

# Waiting reasons every pod passes through on its way up: not a cause.
_ON_THE_WAY = frozenset({"ContainerCreating", "PodInitializing"})
MAX_PART = 450  # characters of each source: a cause, not a dump (the dump is the evidence)


def first_error(events: Iterable[RunEvent]) -> str | None:
    """The first error Dagster recorded for a run: an event carrying an error (a step's exception with its causes,
    an engine event), else the first ERROR-level entry (e.g. "run worker failed"), else None."""
    events = list(events)
    for event in events:
        if event.error:
            return f"{_where(event)}: {event.error}"
    for event in events:
        if event.level in ("ERROR", "CRITICAL") and event.message:
            return f"{_where(event)}: {event.message}"
    return None


def _where(event: RunEvent) -> str:
    kind = event.event_type or event.level or event.kind
    return f"{kind} {event.step_key}" if event.step_key else kind


def container_problems(pod: client.V1Pod) -> list[str]:
    """What keeps the pod's containers from running or made them end badly, e.g. ``dagster: OOMKilled (exit 137)``."""
    problems = []
    statuses = (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
    for status in statuses:
        waiting, terminated = status.state.waiting, status.state.terminated
        last = status.last_state.terminated if status.last_state else None
        if waiting and waiting.reason not in _ON_THE_WAY:
            problems.append(f"{status.name}: {waiting.reason}" + (f" ({waiting.message})" if waiting.message else ""))
        elif terminated and (terminated.exit_code or terminated.reason not in (None, "Completed")):
            problems.append(f"{status.name}: {terminated.reason or 'terminated'} (exit {terminated.exit_code})"
                            + (f" {terminated.message.strip()}" if terminated.message else ""))
        if last and last.reason and last.reason != "Completed":
            problems.append(f"{status.name} before its restart: {last.reason} (exit {last.exit_code})")
    return problems


def pod_problems(pod: client.V1Pod) -> list[str]:
    """Container problems, then pod-level ones: not schedulable, evicted."""
    problems = container_problems(pod)
    for condition in pod.status.conditions or []:
        if condition.type == "PodScheduled" and condition.status == "False":
            problems.append(f"{condition.reason or 'not scheduled'}: {condition.message or ''}".rstrip(": "))
    if pod.status.reason:  # Evicted, DeadlineExceeded, NodeLost, ...
        problems.append(f"{pod.status.reason}: {pod.status.message or ''}".rstrip(": "))
    return problems


def _warnings_for(core: client.CoreV1Api, namespace: str, name: str) -> list[str]:
    """The distinct warning reasons and messages Kubernetes recorded for one object, e.g. FailedCreate: forbidden."""
    events = core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name},type=Warning").items
    return list(dict.fromkeys(f"{e.reason}: {(e.message or '').strip()}" for e in events))


def kubernetes_cause(core: client.CoreV1Api, batch: client.BatchV1Api, namespace: str, run_id: str) -> str | None:
    """What Kubernetes says went wrong with the run's Jobs and pods; None when every one of them looks healthy."""
    jobs = {job.metadata.name: job
            for job in batch.list_namespaced_job(namespace, label_selector=run_selector(run_id)).items}
    pods = pods_of_run(core, namespace, run_id)
    pods += [pod for pod in core.list_namespaced_pod(namespace, label_selector=run_job_pods(run_id)).items
             if pod.metadata.uid not in {p.metadata.uid for p in pods}]
    parts = []
    for pod in pods:
        if problems := pod_problems(pod):
            parts.append(f"pod {pod.metadata.name} {pod.status.phase}: {'; '.join(problems)}")
    with_pods = {(pod.metadata.labels or {}).get(JOB_NAME_LABEL) for pod in pods}
    for name, job in jobs.items():
        failed = [c for c in job.status.conditions or [] if c.type == "Failed" and c.status == "True"]
        if failed:
            parts.append(f"Job {name} failed: {failed[0].reason} {failed[0].message or ''}".rstrip())
        if name not in with_pods and (warnings := _warnings_for(core, namespace, name)):
            parts.append(f"Job {name} ({job_summary(job)}) has no pod: {'; '.join(warnings)}")
    return " | ".join(parts) or None


def run_failure_cause(events: Callable[[], list[RunEvent]], kubernetes: Callable[[], str | None]) -> str:
    """One line: Dagster's first error, then Kubernetes' view; each source that cannot be read says so."""
    parts = []
    try:
        seen = events()
        parts.append(first_error(seen) or "no error in Dagster's event log" + _last_event(seen))
    except Exception as exc:  # the webserver may be what the test broke
        parts.append(f"event log not readable ({type(exc).__name__}: {str(exc)[:120]})")
    try:
        parts.append(kubernetes() or "its Jobs and pods show no problem")
    except Exception as exc:
        parts.append(f"Jobs and pods not readable ({type(exc).__name__}: {str(exc)[:120]})")
    return " ; ".join(_shortened(" ".join(part.split())) for part in parts)


def _last_event(events: list[RunEvent], now: float | None = None) -> str:
    """Where a run without an error stands: its last event and how long ago (e.g. a step's Celery task submitted
    minutes ago that no worker started)."""
    if not events:
        return ""
    last = max(events, key=lambda e: e.timestamp)
    ago = (time.time() if now is None else now) - last.timestamp
    what = " ".join(filter(None, (last.event_type, last.step_key and f"[{last.step_key}]", last.message)))
    return f" (its last event, {ago:.0f} s ago: {what[:160]})"


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_PART else text[:MAX_PART - 1] + "…"
