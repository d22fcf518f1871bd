"""The test's side of the hold workload: a held op finishes once the test creates its release Job.

The release is a suspended Job (it never makes a pod): run and step pods of the official chart may read Jobs
and pods, nothing else. A run counts as held only once its op said, in Dagster's event log, that it holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kubernetes import client

from common.waits import Observation, TerminalState, WaitTimeout, wait_for
from dagster_api import TERMINAL_RUN_STATUSES, DagsterWebserver
from deploy.deployment import Deployment
from observation.failures import first_error
from workloads.locations.conformance.definitions import HOLDING_MESSAGE, RELEASE_JOB

# Release Jobs carry this process's session, so a session removes exactly what it made (also in a namespace
# the suite does not own, where nothing else may be deleted).
SESSION_LABEL = "dkc.dagster.io/session"
SESSION = uuid.uuid4().hex[:12]
HOLDING_PREFIX = HOLDING_MESSAGE.split("{", 1)[0]
HOLD_START_TIMEOUT = 240.0
LOCATION_LOAD_TIMEOUT = 180.0


class HoldFailed(TerminalState):
    """The hold op could not hold (e.g. its pod may not read Jobs): the op's own error, and no fault applied."""


def release_job(name: str, image: str) -> client.V1Job:
    """A Job that only marks a release: suspended, so it never makes a pod (the image is never pulled)."""
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name, labels={SESSION_LABEL: SESSION}),
        spec=client.V1JobSpec(suspend=True, backoff_limit=0, template=client.V1PodTemplateSpec(
            spec=client.V1PodSpec(restart_policy="Never", containers=[
                client.V1Container(name="release-marker", image=image, command=["true"])]))))


def release(dagster: Deployment, run_id: str) -> None:
    """Let the held op of ``run_id`` finish; releasing twice is fine."""
    image = dagster.settings.code_locations[0].image
    try:
        dagster.batch.create_namespaced_job(dagster.namespace, release_job(RELEASE_JOB.format(run_id=run_id), image))
    except client.ApiException as exc:
        if exc.status != 409:  # already released
            raise


def wait_until_holding(webserver: DagsterWebserver, run_id: str, timeout: float = HOLD_START_TIMEOUT,
                       or_ended_by: str | None = None) -> float:
    """Until the run's hold op logged that it holds; returns that log entry's time. A run that ends first
    raises HoldFailed with its first error (e.g. the 403 of a pod that may not watch Jobs), unless an event's
    message contains ``or_ended_by``: the fault under test ended it before its op held (returns that event's time)."""

    def look() -> Observation[float]:
        events = webserver.run_events(run_id)
        for event in events:
            if event.message.startswith(HOLDING_PREFIX):
                return Observation(True, event.message, event.timestamp)
        status = webserver.run_status(run_id)
        ended_by = [e for e in events if or_ended_by and or_ended_by in e.message]
        if status in TERMINAL_RUN_STATUSES and ended_by:
            return Observation(True, f"ended {status.value} before it held: {ended_by[0].message}",
                               ended_by[0].timestamp)
        if status in TERMINAL_RUN_STATUSES:
            raise HoldFailed(f"run {run_id} of the hold job ended {status.value} before it held: "
                             f"{first_error(events) or 'no error in its event log'}")
        return Observation(False, f"run {run_id} {status.value}, {len(events)} events, not holding yet")

    try:
        return wait_for(f"run {run_id} to hold (its op logs {HOLDING_PREFIX.strip()!r})", look, timeout, 1.0)
    except WaitTimeout as exc:
        raise HoldFailed(f"{exc}{webserver.cause_of(run_id)}") from exc


@contextmanager
def holding(dagster: Deployment, location: str | None = None, tags: dict[str, str] | None = None,
            run_config: dict[str, Any] | None = None, or_ended_by: str | None = None) -> Iterator[str]:
    """Launch the hold job once the webserver has its location loaded, wait until its op says it holds (or the
    fault named by ``or_ended_by`` ended it first), yield the run id; release it afterwards whatever happened."""
    location = location or dagster.settings.code_locations[0].name
    # A test before may have replaced the location's server: launching while the webserver still reloads it fails
    # with PipelineNotFoundError (seen under the official chart, whose slower probes widen that window).
    dagster.webserver.wait_for_location_loaded(location, LOCATION_LOAD_TIMEOUT)
    run_id = dagster.webserver.launch_run(dagster.job("hold"), location, run_config=run_config, tags=tags)
    try:
        wait_until_holding(dagster.webserver, run_id, or_ended_by=or_ended_by)
        yield run_id
    finally:
        release(dagster, run_id)


def remove_releases(batch: client.BatchV1Api, namespace: str) -> int:
    """Delete the release Jobs this session made in ``namespace``; returns how many."""
    made = batch.list_namespaced_job(namespace, label_selector=f"{SESSION_LABEL}={SESSION}").items
    for job in made:
        try:
            batch.delete_namespaced_job(job.metadata.name, namespace, propagation_policy="Background")
        except client.ApiException as exc:
            if exc.status != 404:
                raise
    return len(made)
