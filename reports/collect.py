"""The evidence of one test on a Dagster deployment, attached to its Allure result after it ran.

While the test runs, a pod timeline of the deployment's namespace is recorded; afterwards come, for each
run the test launched (or whose pods appeared meanwhile, e.g. Dagster's retries): its event log, the specs
of its pods and the namespace's Kubernetes events; then the timeline as a picture, with the runs' ends
marked. Collecting evidence never changes a test's outcome: what cannot be read is said in a note.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from kubernetes import client

from common import timings
from deploy import names
from deploy.deployment import Deployment
from observation.kube import pod_summary
from observation.labels import RUN_ID_LABEL
from observation.snapshot import as_documents, event_log, events_since, pods_of_run
from observation.timeline import PodTimeline
from reports.evidence import attach_json, attach_png, attach_text, attach_yaml
from reports.launches import LAUNCHES
from reports.redact import REDACTOR
from reports.timeline import render_png

MAX_RUNS = 6
MAX_LINES = 3000


class Evidence:
    """Records the namespace's pods from the start of a test; ``finish()`` (once the test body has run, so the
    attachments land in the test's own result) stops recording and attaches what the test's runs left behind."""

    def __init__(self, deployment: Deployment, title: str, figures: list[tuple[str, Any]]) -> None:
        self.deployment, self.title, self.figures = deployment, title, figures
        self.started = time.time()
        self.first_launch = LAUNCHES.mark()
        self.timeline = PodTimeline(deployment.api, deployment.namespace, names.component_of)
        self.finished = False

    def __enter__(self) -> Evidence:
        self.timeline.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.timeline.__exit__(None, None, None)  # a setup that failed never reached finish(): just stop

    def finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.timeline.__exit__(None, None, None)
        try:
            with timings.span("evidence", self.title):
                attach_evidence(self.deployment, self.title, self.timeline, self.started,
                                LAUNCHES.since(self.first_launch), self.figures)
        except Exception as exc:  # evidence is for the reader; failing to collect it is not the test's verdict
            attach_text("evidence not collected", f"{type(exc).__name__}: {exc}")


def attach_evidence(deployment: Deployment, title: str, timeline: PodTimeline, started: float,
                    launched: list[str], figures: list[tuple[str, Any]]) -> None:
    if figures:
        attach_json("figures", {name: value for name, value in figures})
    run_ids = runs_of_test(deployment.core, deployment.namespace, started, launched)
    for run_id in run_ids:
        _attach_run(deployment, run_id, timeline)
    if run_ids:
        attach_text("Kubernetes events", "\n".join(events_since(deployment.core, deployment.namespace, started)[
            -MAX_LINES:]) or "no events")
    spans = [_redacted_span(span) for span in timeline.spans()]
    png = render_png(spans, timeline.marks(), REDACTOR.redact_text(title), started, timeline.stopped or time.time())
    attach_png("pod timeline", png)


def runs_of_test(core: client.CoreV1Api, namespace: str, since: float, launched: list[str]) -> list[str]:
    """The runs launched during the test, then those whose pods appeared meanwhile (newest last, at most a few)."""
    found = list(dict.fromkeys(launched))
    for pod in core.list_namespaced_pod(namespace, label_selector=RUN_ID_LABEL).items:
        run_id = (pod.metadata.labels or {}).get(RUN_ID_LABEL)
        if run_id and run_id not in found and pod.metadata.creation_timestamp.timestamp() >= since - 1:
            found.append(run_id)
    return found[-MAX_RUNS:]


def _attach_run(deployment: Deployment, run_id: str, timeline: PodTimeline) -> None:
    short = run_id[:8]
    try:
        run = deployment.webserver.run(run_id)
        if run.end_time:
            timeline.mark(f"run {short} {run.status.value}", run.end_time)
        attach_text(f"run {short} event log ({run.job_name}, {run.status.value})",
                    "\n".join(event_log(deployment.webserver, run_id)[-MAX_LINES:]))
    except Exception as exc:  # the webserver may be the component the test broke
        attach_text(f"run {short} event log", f"not readable: {type(exc).__name__}: {exc}")
    pods = pods_of_run(deployment.core, deployment.namespace, run_id)
    if pods:
        attach_yaml(f"run {short} pod specs ({len(pods)})", as_documents(deployment.api, pods))


def failure_dump(deployment: Deployment, started: float, launched: list[str], max_events: int = 40) -> str:
    """The evidence of a failed test as text, for the terminal and JUnit when Allure does not record: each run's
    last event log lines and its pods' states, then the namespace's warnings since the test started. Redacted."""
    sections = []
    for run_id in runs_of_test(deployment.core, deployment.namespace, started, launched):
        try:
            run = deployment.webserver.run(run_id)
            lines = event_log(deployment.webserver, run_id)
            head = f"run {run_id} ({run.job_name}) {run.status.value}, last {min(len(lines), max_events)} events:"
            body = lines[-max_events:]
        except Exception as exc:  # the webserver may be the component the test broke
            head, body = f"run {run_id}: event log not readable: {type(exc).__name__}: {exc}", []
        pods = [f"  pod {pod_summary(pod)}" for pod in pods_of_run(deployment.core, deployment.namespace, run_id)]
        sections.append("\n".join([head, *(f"  {line}" for line in body), *(pods or ["  no pods left"])]))
    warnings = [line for line in events_since(deployment.core, deployment.namespace, started) if " Warning " in line]
    sections.append("Kubernetes warnings in " + deployment.namespace + " since the test started:\n"
                    + ("\n".join(f"  {line}" for line in warnings[-max_events:]) or "  none"))
    return REDACTOR.redact_text("\n\n".join(sections))


def _redacted_span(span: Any) -> Any:
    """Pod names and components are drawn as text: they pass through redaction like any attachment."""
    return replace(span, name=REDACTOR.redact_text(span.name), component=REDACTOR.redact_text(span.component))
