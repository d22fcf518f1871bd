"""C25: while the daemon is replaced (a rollout, as every helm upgrade does), never two daemons heartbeat at once
beyond one heartbeat interval, and no run is launched twice.

Runs are launched the moment the old daemon is asked to stop, so they wait in the queue through the replacement:
the dequeue is where a second daemon would launch a run twice. Two daemons at once are measured two ways: from the
pods (the new daemon's pod made before the old one was gone) and by Dagster itself (a daemon that finds another's
heartbeats logs "Another ... daemon is still sending heartbeats").
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from chaos import run as chaos_run
from chaos.faults import ControlPlane, FaultNotApplied
from clusters import ClusterInfo
from common.waits import Observation, wait_for
from deploy import names
from deploy.deployment import Deployment
from observation.health import daemons_fresh_since
from observation.kube import pod_uids, wait_replacement_ready
from observation.timeline import PodTimeline

pytestmark = [pytest.mark.ha, pytest.mark.chaos, pytest.mark.outage, pytest.mark.needs_cluster, pytest.mark.c25]

HEARTBEAT_INTERVAL_SECONDS = 30  # dagster._daemon.controller.DEFAULT_HEARTBEAT_INTERVAL_SECONDS
QUEUED_RUNS = 3
TWO_DAEMONS = "daemon is still sending heartbeats"  # Dagster's error when it finds another daemon's heartbeats
RECOVERY_SECONDS = 240


def asked_to_stop(dagster: Deployment, name: str) -> Observation[None]:
    pods = dagster.core.list_namespaced_pod(dagster.namespace, field_selector=f"metadata.name={name}").items
    stopping = not pods or pods[0].metadata.deletion_timestamp is not None
    return Observation(stopping, "being deleted" if stopping else "running")


def launches_of(dagster: Deployment, run_id: str) -> list[str]:
    """How the run was launched, by its own record: its run Jobs, its run pods and its RUN_STARTING events."""
    found = dagster.footprint(run_id)
    starting = [e for e in dagster.webserver.run_events(run_id) if e.event_type == "RUN_STARTING"]
    problems = []
    if [job.metadata.name for job in found.run_jobs] != [names.run_job_name(run_id)]:
        problems.append(f"run Jobs {[job.metadata.name for job in found.run_jobs]}")
    if len(found.run_pods) != 1:
        problems.append(f"{len(found.run_pods)} run pods")
    if len(starting) != 1:
        problems.append(f"{len(starting)} RUN_STARTING events")
    return problems


def test_the_daemon_is_replaced_without_two_daemons_at_once_or_a_run_launched_twice(
    dagster: Deployment, cluster: ClusterInfo, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory,
    record_property: pytest.RecordProperty,
) -> None:
    before = pod_uids(dagster.core, dagster.namespace, control_plane.daemon)
    assert len(before) == 1, f"expected one daemon pod, found {sorted(before.values())}"
    (old_uid, old_name), = before.items()
    location = dagster.settings.code_locations[0].name
    variables = {**dagster.chaos_variables, "daemon": dagster.settings.names.daemon,
                 "recovery_timeout": RECOVERY_SECONDS}
    journal_path = tmp_path_factory.mktemp("chaos") / "roll-daemon.json"

    with PodTimeline(dagster.api, dagster.namespace, names.component_of) as timeline, ThreadPoolExecutor(1) as pool:
        experiment = pool.submit(chaos_run.run, chaos_run.EXPERIMENTS / "roll-daemon.yaml", variables, journal_path,
                                 cluster.kubeconfig, cluster.context)
        wait_for(f"the old daemon pod {old_name} to be asked to stop", lambda: asked_to_stop(dagster, old_name),
                 60, 0.2)
        queued = [dagster.webserver.launch_run(dagster.job("ping"), location) for _ in range(QUEUED_RUNS)]
        journal = experiment.result(timeout=2 * RECOVERY_SECONDS)
        new = wait_replacement_ready(dagster.core, dagster.namespace, control_plane.daemon, set(before),
                                     timeout=RECOVERY_SECONDS)
        statuses = [dagster.webserver.wait_for_run_status(run_id, ["SUCCESS"], timeout=300) for run_id in queued]
        # Long enough for the new daemon to heartbeat twice: a second daemon's heartbeats would be seen by then.
        since = time.time() + HEARTBEAT_INTERVAL_SECONDS
        wait_for("every required daemon to heartbeat again one interval later",
                 lambda: daemons_fresh_since(dagster.webserver, since), RECOVERY_SECONDS, 2)
    spans = {span.uid: span for span in timeline.spans()}
    if old_uid not in spans or new.metadata.uid not in spans or not spans[old_uid].gone:
        raise FaultNotApplied(f"the rollout was not seen: old daemon {old_name} gone "
                              f"{spans.get(old_uid) and spans[old_uid].gone}, new {new.metadata.name}")
    side_by_side = max(0.0, spans[old_uid].gone - spans[new.metadata.uid].created)
    record_property("daemons_side_by_side_seconds", f"{side_by_side:.1f}")
    log = dagster.core.read_namespaced_pod_log(new.metadata.name, dagster.namespace)
    complaints = [line for line in log.splitlines() if TWO_DAEMONS in line]
    twice = {run_id: problems for run_id in queued if (problems := launches_of(dagster, run_id))}

    assert journal.get("status") == "completed", f"the daemons did not recover: experiment {journal.get('status')}"
    assert side_by_side <= HEARTBEAT_INTERVAL_SECONDS, (
        f"the new daemon {new.metadata.name} ran {side_by_side:.0f}s beside the old one {old_name} (more than one "
        f"heartbeat interval, {HEARTBEAT_INTERVAL_SECONDS}s): the daemon Deployment's strategy must be Recreate")
    assert not complaints, f"Dagster saw two daemons at once: {complaints[0].strip()[:300]} ({len(complaints)} lines)"
    assert not twice, f"runs launched more than once: {twice}"
    assert [s.value for s in statuses] == ["SUCCESS"] * QUEUED_RUNS
    print(f"C25: {old_name} -> {new.metadata.name}, side by side {side_by_side:.1f}s; {QUEUED_RUNS} runs queued "
          f"through the replacement each launched once, SUCCESS")
