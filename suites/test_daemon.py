"""C5: a killed daemon comes back and resumes its work: its heartbeats are fresh again, a run queued while
it was gone is dequeued by its replacement and finishes, and its sensor and schedule tick again.

The fault is kill-daemon.yaml (chaostoolkit-kubernetes), proven by the old pod disappearing and a new
Ready pod with another UID; "after the restart" means after the replacement's container started."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from chaos.faults import ControlPlane, apply, daemon_fault
from clusters import ClusterInfo
from common.waits import Observation, wait_for
from deploy.deployment import Deployment
from observation.health import daemons_fresh_since
from observation.kube import pod_uids, wait_gone
from workloads.locations.conformance.definitions import SCHEDULE_NAME, SENSOR_NAME

pytestmark = [pytest.mark.ha, pytest.mark.chaos, pytest.mark.needs_cluster, pytest.mark.c5]

SENSOR_TICK_TIMEOUT = 120  # the sensor's minimum interval is 15 s
SCHEDULE_TICK_TIMEOUT = 150  # the schedule ticks once a minute


def ticked_after(dagster: Deployment, kind: str, name: str, location: str, since: float) -> Observation[float]:
    ticks = dagster.webserver.tick_times(kind, name, location)
    newest = max((at for at, _ in ticks), default=0.0)
    return Observation(newest > since, f"newest {kind} tick {newest - since:+.0f}s from the restart", newest)


def test_a_killed_daemon_comes_back_and_resumes_its_work(
    dagster: Deployment, cluster: ClusterInfo, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory,
    record_property: pytest.RecordProperty,
) -> None:
    location = dagster.settings.code_locations[0].name
    fault = daemon_fault(control_plane)
    (old_uid, old_name), = pod_uids(dagster.core, dagster.namespace, control_plane.daemon).items()

    with ThreadPoolExecutor(1) as background:
        applying = background.submit(apply, fault, dagster.core, dagster.namespace,
                                     tmp_path_factory.mktemp("chaos") / "c5-daemon.json", cluster.kubeconfig,
                                     cluster.context, variables=dagster.chaos_variables)
        wait_gone(dagster.core.read_namespaced_pod, "pod", dagster.namespace, old_name, old_uid)
        queued = dagster.webserver.launch_run(dagster.job("ping"), location)  # no daemon to dequeue it now
        applied = applying.result()
    replacement = dagster.core.read_namespaced_pod(applied.replacements[control_plane.daemon], dagster.namespace)
    restarted_at = replacement.status.container_statuses[0].state.running.started_at.timestamp()
    record_property("replacement_ready_seconds", f"{applied.recovered_seconds:.1f}")

    status = dagster.webserver.wait_for_run_status(queued, ["SUCCESS"], timeout=300)
    events = dagster.webserver.run_events(queued)
    enqueued = [e.timestamp for e in events if e.event_type == "RUN_ENQUEUED"]
    dequeued = [e.timestamp for e in events if e.event_type == "RUN_STARTING"]  # the coordinator hands it over
    heartbeats = wait_for("every required daemon to heartbeat after the restart",
                          lambda: daemons_fresh_since(dagster.webserver, restarted_at), 120, 2)
    sensor_tick = wait_for(f"sensor {SENSOR_NAME} to tick after the restart",
                           lambda: ticked_after(dagster, "sensor", SENSOR_NAME, location, restarted_at),
                           SENSOR_TICK_TIMEOUT, 3)
    schedule_tick = wait_for(f"schedule {SCHEDULE_NAME} to tick after the restart",
                             lambda: ticked_after(dagster, "schedule", SCHEDULE_NAME, location, restarted_at),
                             SCHEDULE_TICK_TIMEOUT, 5)

    assert status.value == "SUCCESS", f"the run queued while the daemon was down ended {status.value}"
    assert enqueued, f"run {queued} was never queued (events: {[e.event_type for e in events]})"
    assert dequeued and dequeued[0] >= restarted_at, (
        f"run {queued} was not dequeued by the new daemon (RUN_STARTING at {dequeued}, restart at {restarted_at})")
    print(f"C5: {old_name} -> {replacement.metadata.name}; run {queued} queued {enqueued[0] - restarted_at:+.1f}s, "
          f"dequeued {dequeued[0] - restarted_at:+.1f}s from the restart; heartbeats {heartbeats}; sensor tick "
          f"{(sensor_tick or 0) - restarted_at:.0f}s, schedule tick {(schedule_tick or 0) - restarted_at:.0f}s after")

