"""C27: a run over its max runtime (the ``dagster/max_runtime`` tag) ends FAILURE within the max runtime + the
poll interval, and nothing of it is left running.

The run holds in its op, so it would run for ever: run monitoring must notice the runtime, terminate the run
(deleting its run Job) and mark it FAILURE.
"""

from __future__ import annotations

import time

import pytest

from deploy.deployment import Deployment
from suites.hold import holding

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster, pytest.mark.c27]

MAX_RUNTIME_SECONDS = 20
MARGIN_SECONDS = 60  # the daemon's loop, the GraphQL read, a loaded node
GRACE_SECONDS = 60  # after FAILURE: the deleted Job's pods get their termination grace period


def test_a_run_over_its_max_runtime_ends_failure_in_time_and_leaves_nothing_running(
    dagster: Deployment, record_property: pytest.RecordProperty,
) -> None:
    settings = dagster.settings
    if not settings.run_monitoring:
        pytest.skip(f"the instance in {dagster.namespace} has no run monitoring, which enforces dagster/max_runtime")
    bound = MAX_RUNTIME_SECONDS + settings.run_monitoring_poll_interval_seconds

    with holding(dagster, tags={"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)}) as run_id:
        status = dagster.webserver.wait_for_run_status(run_id, ["FAILURE"], timeout=bound + 2 * MARGIN_SECONDS)
        run = dagster.webserver.run(run_id)
        ran = (run.end_time or time.time()) - (run.start_time or time.time())
        record_property("start_to_failure_seconds", f"{ran:.1f}")
        left = dagster.running_after(run_id, GRACE_SECONDS)

    assert status.value == "FAILURE"
    assert ran <= bound + MARGIN_SECONDS, (
        f"run {run_id} FAILURE {ran:.0f}s after it started; promised within its max runtime {MAX_RUNTIME_SECONDS}s "
        f"+ the poll interval {settings.run_monitoring_poll_interval_seconds}s + {MARGIN_SECONDS}s")
    assert not left, f"{GRACE_SECONDS}s after run {run_id} was FAILURE, still running: {'; '.join(left)}"
    print(f"run {run_id} FAILURE {ran:.1f}s after it started (max runtime {MAX_RUNTIME_SECONDS}s); nothing left")
