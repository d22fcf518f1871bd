"""C24: a code location server down for a while: a run queued, a run retry or a schedule tick due during the outage
happens once the server is back (or during the outage, where it needs no server), without a manual reload.

One outage per combination: the location's server Deployment is scaled to zero for OUTAGE_SECONDS (the
stop-dependency experiment) and given back. Meanwhile a held run of that location (dagster/max_retries 1) loses its
run pod, so run monitoring fails it and the daemon's retry falls due while the server is away; a run QUEUED behind a
tag concurrency limit of 1 (a held run has the slot) becomes free to launch when that held run is released in the
outage; the location's schedule ticks every minute, so a tick falls due in the outage too. Nothing here reloads the
location: the suite's usual wait for a loaded location would, and that is exactly what users do by hand today.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from chaos.faults import ControlPlane
from chaos.outages import AppliedOutage, Outage, apply_outage
from chaos.run_worker import RUN_POD_KILLED
from clusters import ClusterInfo
from common.waits import Observation, WaitTimeout, wait_for
from dagster_api import TERMINAL_RUN_STATUSES
from deploy.deployment import Deployment
from suites.hold import holding, release
from suites.instance import instance_with
from suites.known import known_defect
from workloads.locations.conformance.definitions import SCHEDULE_NAME

pytestmark = [pytest.mark.ha, pytest.mark.chaos, pytest.mark.outage, pytest.mark.needs_cluster, pytest.mark.c24]

OUTAGE_SECONDS = 70  # started a few seconds into a minute: the every-minute schedule falls due once while the server
# is away, and it is back well before the next one (a schedule without partitions never catches up a missed time
# older than its latest: only that one tick is Dagster's to retry)
AFTER_SECONDS = 120  # once the server is back: two schedule ticks, several retry-daemon loops
RECOVERY_SECONDS = 240
QUEUE_TAG = ("dkc/c24-queue", "one-at-a-time")  # limited to one run at a time for the test
QUEUED_RUN_SECONDS = 300  # once the server is back: dequeued, its pod started, the report step done

RETRY_NEVER_COMES = known_defect(
    "dagster-io/dagster#20730, #14605: a run that fails while its code location's server is unreachable is not "
    "retried: the retry daemon logs 'Failed to retry run' (DagsterCodeLocationLoadError / UNAVAILABLE) and never "
    "tries again once the server is back")

TICK_LOST = known_defect(
    "Dagster defect, no upstream issue found that names it (the design card lists dagster-io/dagster#32216 for "
    "C24; PR #17224 says a schedule 'will resume execution once the server is available'): the every-minute "
    "schedule's tick due while its code location's server was scaled to zero was never evaluated once the server "
    "was back: no tick is recorded for that minute (or it stays FAILURE), while the next minute's tick is SKIPPED "
    "as the schedule returns")


@dataclass
class DuringOutage:
    outage: AppliedOutage
    failed_run: str
    failed_status: str
    retry: str | None  # the retry run, if one came within AFTER_SECONDS of the server's return
    ticks: list[tuple[float, str]]  # (scheduled at, status) of the schedule ticks due during the outage
    retry_events: list[str]  # what the daemon said about retrying the failed run
    queued_run: str  # QUEUED behind the tag limit when the outage began
    queued_end: str  # its status at the end of QUEUED_RUN_SECONDS after the server was back
    queued_started: float | None  # when it started (in the outage or after)
    queued_cause: str  # its first error from the event log and its pods' state, when it did not succeed


def retry_of(dagster: Deployment, run_id: str) -> Observation[str]:
    retries = dagster.webserver.runs(tags={"dagster/parent_run_id": run_id})
    return Observation(bool(retries), f"{len(retries)} retries", retries[0].run_id if retries else "")


def ticks_between(dagster: Deployment, location: str, start: float, end: float) -> list[tuple[float, str]]:
    return [(at, status) for at, status in dagster.webserver.tick_times("schedule", SCHEDULE_NAME, location, limit=20)
            if start <= at <= end]


def evaluated(dagster: Deployment, location: str, start: float, end: float) -> Observation[list[tuple[float, str]]]:
    ticks = ticks_between(dagster, location, start, end)
    done = bool(ticks) and all(status != "FAILURE" for _, status in ticks)
    return Observation(done, f"ticks due in the outage: {[status for _, status in ticks] or 'none'}", ticks)


@pytest.fixture(scope="module")
def during_outage(dagster: Deployment, cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory) -> DuringOutage:
    settings = dagster.settings
    if not settings.run_retries or not settings.run_monitoring:
        pytest.skip(f"the instance in {dagster.namespace} needs run retries and run monitoring for this claim "
                    f"(run_retries {settings.run_retries}, run monitoring {settings.run_monitoring})")
    with instance_with(dagster, tag_concurrency_limits=((*QUEUE_TAG, 1),)) as limited:
        return outage_of_the_location(limited, cluster, tmp_path_factory.mktemp("chaos"))


def outage_of_the_location(dagster: Deployment, cluster: ClusterInfo, chaos_dir: Path) -> DuringOutage:
    settings = dagster.settings
    location = settings.code_locations[0]
    servers = ControlPlane.of(dagster.apps, dagster.namespace, settings.names.webserver, settings.names.daemon,
                              {location.name: location.service})
    outage = Outage(f"code-location-{location.name}", location.service, servers.locations[location.name],
                    OUTAGE_SECONDS)
    queue_tags = {QUEUE_TAG[0]: QUEUE_TAG[1]}
    with (holding(dagster, tags={"dagster/max_retries": "1"}) as run_id,
          holding(dagster, tags=queue_tags) as blocker, ThreadPoolExecutor(1) as pool):
        queued = dagster.webserver.launch_run(dagster.job("report"), location.name, tags=queue_tags)
        held = dagster.footprint(run_id)
        wait_for("the first seconds of a minute (so one schedule tick falls due in the outage)",
                 lambda: Observation(1 <= time.time() % 60 < 6, f"second {time.time() % 60:.0f} of the minute"), 70,
                 0.5)
        before = dagster.webserver.run_status(queued).value
        if before != "QUEUED":
            pytest.fail(f"run {queued} was {before}, not QUEUED behind run {blocker} (tag limit {QUEUE_TAG} 1), "
                        f"before the outage", pytrace=False)
        away = pool.submit(apply_outage, outage, dagster.core, dagster.namespace, chaos_dir / f"{outage.name}.json",
                           cluster.kubeconfig, cluster.context, dagster.chaos_variables, RECOVERY_SECONDS)
        wait_for(f"the server of code location {location.name} to be gone",
                 lambda: Observation(not dagster.core.list_namespaced_pod(
                     dagster.namespace, label_selector=outage.selector).items, "its pods still there"), 120, 0.5)
        release(dagster, blocker)  # its slot frees while the server is away
        RUN_POD_KILLED.apply(dagster.core, dagster.batch, held.run_pods[0], held.run_jobs[0],
                             {**dagster.chaos_variables, "run_id": run_id}, chaos_dir / "run-pod-killed.json",
                             cluster.kubeconfig, cluster.context)
        failed = dagster.webserver.wait_for_run_status(run_id, ["FAILURE"], timeout=120)
        applied = away.result(timeout=OUTAGE_SECONDS + 2 * RECOVERY_SECONDS)
    deadline = time.monotonic() + AFTER_SECONDS
    try:
        retry = wait_for(f"a retry of run {run_id}", lambda: retry_of(dagster, run_id), AFTER_SECONDS, 3)
    except WaitTimeout:
        retry = None
    try:
        ticks = wait_for("the schedule ticks due in the outage to be evaluated",
                         lambda: evaluated(dagster, location.name, applied.down_from, applied.back_from),
                         max(5.0, deadline - time.monotonic()), 5) or []
    except WaitTimeout:
        ticks = ticks_between(dagster, location.name, applied.down_from, applied.back_from)
    if retry:
        release(dagster, retry)  # the retry of a hold run holds too
    queued_end = ended_within(dagster, queued, max(5.0, applied.back_from + QUEUED_RUN_SECONDS - time.time()))
    queued_started = dagster.webserver.run(queued).start_time
    queued_cause = "" if queued_end == "SUCCESS" else dagster.webserver.cause_of(queued)
    retry_events = [e.message.splitlines()[0] for e in dagster.webserver.run_events(run_id)
                    if "retry" in e.message.lower()]
    print(f"C24: {location.name}'s server away {applied.down_seconds:.0f}s; run {run_id} {failed.value} meanwhile, "
          f"retry {retry or 'none'}; the daemon on retrying it: {retry_events or 'nothing'}; schedule ticks due in "
          f"the outage: {[status for _, status in ticks] or 'none'}; queued run {queued} {queued_end}, started "
          f"{when_started(queued_started, applied)}")
    return DuringOutage(applied, run_id, failed.value, retry or None, ticks, retry_events, queued, queued_end,
                        queued_started, queued_cause)


def ended_within(dagster: Deployment, run_id: str, timeout: float) -> str:
    """The run's status once it ended, or the status it still had at the deadline."""
    try:
        return dagster.webserver.wait_for_run_status(run_id, TERMINAL_RUN_STATUSES, timeout=timeout).value
    except WaitTimeout:
        return dagster.webserver.run_status(run_id).value


def when_started(started: float | None, outage: AppliedOutage) -> str:
    if started is None:
        return "never"
    if started < outage.back_from:
        return f"{started - outage.down_from:.0f}s into the outage"
    return f"{started - outage.back_from:.0f}s after the server was back"


def test_a_run_queued_while_its_code_location_is_down_launches_and_succeeds(
    during_outage: DuringOutage, record_property: pytest.RecordProperty,
) -> None:
    seen = during_outage
    record_property("queued_run_started", when_started(seen.queued_started, seen.outage))
    assert seen.queued_end == "SUCCESS", (
        f"run {seen.queued_run}, QUEUED when its code location's server went away for "
        f"{seen.outage.down_seconds:.0f}s and free to launch in the outage, was {seen.queued_end} "
        f"{QUEUED_RUN_SECONDS}s after the server was back (started: {when_started(seen.queued_started, seen.outage)})"
        f"{seen.queued_cause}")


@RETRY_NEVER_COMES
def test_a_run_that_fails_while_its_code_location_is_down_is_retried_once_it_is_back(
    dagster: Deployment, during_outage: DuringOutage, record_property: pytest.RecordProperty,
) -> None:
    seen = during_outage
    record_property("location_down_seconds", f"{seen.outage.down_seconds:.1f}")
    assert seen.failed_status == "FAILURE"
    assert seen.retry, (
        f"run {seen.failed_run} failed while its code location's server was down ({seen.outage.down_seconds:.0f}s) and "
        f"no retry came {AFTER_SECONDS}s after the server was back; the daemon said: "
        f"{' | '.join(seen.retry_events) or 'nothing about a retry'}")
    status = dagster.webserver.wait_for_run_status(seen.retry, ["SUCCESS"], timeout=300)
    assert status.value == "SUCCESS"


@TICK_LOST
def test_a_schedule_tick_due_while_its_code_location_is_down_is_evaluated_once_it_is_back(
    during_outage: DuringOutage, record_property: pytest.RecordProperty,
) -> None:
    seen = during_outage
    statuses = [status for _, status in seen.ticks]
    record_property("ticks_due_in_the_outage", " ".join(statuses) or "none")
    assert seen.ticks, (f"no tick of schedule {SCHEDULE_NAME} is recorded for the {seen.outage.down_seconds:.0f}s the "
                        f"server was down (it ticks every minute), {AFTER_SECONDS}s after it came back")
    assert "FAILURE" not in statuses, (
        f"the ticks of {SCHEDULE_NAME} due in the outage ended {statuses}, not evaluated once the server was back")
