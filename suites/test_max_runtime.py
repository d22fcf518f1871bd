"""C27: a run over its max runtime (the ``dagster/max_runtime`` tag, or the instance's run_monitoring
max_runtime_seconds) ends FAILURE within the max runtime + the poll interval, and nothing of it is left running.

The run holds in its op, so it would run for ever: run monitoring must notice the runtime, terminate the run
(deleting its run Job) and mark it FAILURE. The instance's setting is given to the suite's own deployments for the
test (the official chart has no value for it: skipped there, saying so).
"""

from __future__ import annotations

import time

import pytest

from dagster_api.results import RunEvent
from deploy.deployment import Deployment
from deploy.helm_values import CHART_CANNOT_RENDER
from suites.hold import HOLDING_PREFIX, holding
from suites.instance import instance_with, require_run_monitoring

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster, pytest.mark.c27]

MAX_RUNTIME_SECONDS = 20
MARGIN_SECONDS = 60  # the daemon's loop, the GraphQL read, a loaded node
GRACE_SECONDS = 60  # after FAILURE: the deleted Job's pods get their termination grace period

# The Celery worker's task polls the run every 10 s while its step Job runs and deletes the Job once the run is
# not STARTED: nothing else removes a step Job of celery-k8s when its run is terminated.
CELERY_STEP_JOB_DELETED = "Terminating Kubernetes Job because dagster run status is not STARTED"


MAX_RUNTIME_ENDS_CANCELED = (
    "Dagster defect, no upstream issue found: a run over its max runtime sometimes ends CANCELED, not FAILURE "
    "(so run retries never fire for it): the run worker's RUN_CANCELED races the daemon's RUN_FAILURE and its "
    "status update lands last")

# The daemon's own RUN_FAILURE for a run over its max runtime, and the RUN_CANCELING before it
# (run_monitoring.check_run_timeout): the proof that the max runtime is what ended the run.
DAEMON_FAILURE = "Exceeded maximum runtime"
DAEMON_CANCELING = "Canceling due to exceeding maximum runtime"


def canceled_after_the_daemons_failure(events: list[RunEvent]) -> str:
    """How the run worker's RUN_CANCELED raced the daemon's RUN_FAILURE, or "" if they did not both end the run.

    Dagster's race, read from its source: the daemon reports RUN_CANCELING, has the launcher terminate the run,
    then reports RUN_FAILURE; the run worker, interrupted meanwhile, reads the run's status and, still seeing
    CANCELING, reports RUN_CANCELED. Each report stores its event, then sets the run's status with no check of
    what is there (SqlRunStorage.handle_run_event), so the run ends as whichever status update lands last, in
    either order of the two events (seen: CANCELED 2 s after FAILURE; CANCELED stored first, FAILURE 0.4 s earlier
    by its timestamp but stored second)."""
    failures = [e for e in events if e.event_type == "RUN_FAILURE" and DAEMON_FAILURE in e.message]
    canceled = [e for e in events if e.event_type == "RUN_CANCELED"]
    if not failures or not canceled:
        return ""
    failure, cancel = failures[-1], canceled[-1]
    stored = "after" if events.index(cancel) > events.index(failure) else "before"
    return (f"both ended the run: the daemon's RUN_FAILURE ({failure.message!r}) and the run worker's RUN_CANCELED "
            f"({cancel.message!r}), stored {stored} it, {cancel.timestamp - failure.timestamp:+.1f}s by their "
            f"timestamps; the CANCELED status update landed last")


def why_left(deployment: Deployment, run_id: str) -> str:
    """On celery-k8s: whether the worker's task ever deleted the step Job (if not, its task died or never polled)."""
    if not deployment.settings.uses_celery:
        return ""
    said = any(CELERY_STEP_JOB_DELETED in event.message for event in deployment.webserver.run_events(run_id))
    return ("; the Celery worker reported deleting the step Job" if said else
            f"; the Celery worker never reported '{CELERY_STEP_JOB_DELETED}' (its task died or stopped polling)")


@pytest.mark.parametrize("set_by", ["run-tag", "instance"])
def test_a_run_over_its_max_runtime_ends_failure_in_time_and_leaves_nothing_running(
    dagster: Deployment, set_by: str, record_property: pytest.RecordProperty,
) -> None:
    settings = dagster.settings
    require_run_monitoring(dagster, "enforces max runtimes")
    if set_by == "instance" and settings.helm:
        pytest.skip(f"{CHART_CANNOT_RENDER}: a Dagster installed with it has no instance-wide max runtime")
    bound = MAX_RUNTIME_SECONDS + settings.run_monitoring_poll_interval_seconds
    tags = {"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)} if set_by == "run-tag" else None
    wanted = {} if set_by == "run-tag" else {"run_monitoring_max_runtime_seconds": MAX_RUNTIME_SECONDS}

    # The max runtime counts from RUN_START: on a loaded node a celery-k8s step pod may start after it (seen: 35 s),
    # so a run the daemon ended before its op held is checked the same way (it would have run for ever too).
    with (instance_with(dagster, **wanted) as deployment,
          holding(deployment, tags=tags, or_ended_by=DAEMON_CANCELING) as run_id):
        # CANCELED is waited for too, so that the run's end in time and what it leaves are checked either way.
        status = deployment.webserver.wait_for_run_status(run_id, ["FAILURE", "CANCELED"],
                                                          timeout=bound + 2 * MARGIN_SECONDS)
        run = deployment.webserver.run(run_id)
        ran = (run.end_time or time.time()) - (run.start_time or time.time())
        record_property("start_to_failure_seconds", f"{ran:.1f}")
        left = deployment.running_after(run_id, GRACE_SECONDS)
        events = deployment.webserver.run_events(run_id)
        overwritten = canceled_after_the_daemons_failure(events)

    canceling = [e for e in events if e.event_type == "RUN_CANCELING" and DAEMON_CANCELING in e.message]
    assert canceling, (f"run {run_id} ended {status.value} but the daemon never reported {DAEMON_CANCELING!r}: "
                       f"something else ended it{dagster.webserver.cause_of(run_id)}")

    assert ran <= bound + MARGIN_SECONDS, (
        f"run {run_id} {status.value} {ran:.0f}s after it started; promised within its max runtime "
        f"{MAX_RUNTIME_SECONDS}s + the poll interval {settings.run_monitoring_poll_interval_seconds}s "
        f"+ {MARGIN_SECONDS}s")
    assert not left, (f"{GRACE_SECONDS}s after run {run_id} was {status.value}, still running: {'; '.join(left)}"
                      f"{why_left(dagster, run_id)}")
    if status.value == "CANCELED" and overwritten:
        # Intermittent (most runs end FAILURE), so not a strict xfail: it is reported only when it happened.
        pytest.xfail(f"{MAX_RUNTIME_ENDS_CANCELED}; seen on run {run_id}: {overwritten}")
    assert status.value == "FAILURE", (
        f"run {run_id} over its max runtime ended {status.value}, not FAILURE{dagster.webserver.cause_of(run_id)}")
    held = "in its held op" if any(e.message.startswith(HOLDING_PREFIX) for e in events) else "before its op held"
    print(f"run {run_id} FAILURE {ran:.1f}s after it started (max runtime {MAX_RUNTIME_SECONDS}s, reached {held}); "
          "nothing left")
