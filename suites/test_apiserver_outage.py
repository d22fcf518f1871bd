"""C23: the Kubernetes apiserver unavailable for ~45 s (longer than the Kubernetes client's retries in Dagster,
3 x 10 s): a healthy run in flight still ends SUCCESS, a run queued meanwhile is not dropped, the daemon heartbeats
again.

The apiserver process is stopped (SIGSTOP: its port stays open, nothing answers) by the pause-apiserver experiment
and let run on after the outage. The run in flight holds in its op throughout; the queued run is launched while the
apiserver answers nothing, straight to the webserver pod from inside the node's network (the suite's usual way in,
the apiserver's service proxy, is what is stopped). The fault is proven by the kernel's own word: every apiserver
process was in state T (stopped) before and after that launch.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from kubernetes import client

from chaos import run as chaos_run
from chaos.dagster.actions import continue_processes, process_state
from chaos.faults import FaultNotApplied
from clusters import ClusterInfo
from clusters.provider import Provider
from common.waits import Observation, wait_for
from dagster_api import DagsterWebserver
from dagster_api.transport import Endpoint
from deploy.deployment import Deployment
from observation.health import daemons_fresh_since
from suites.hold import holding, release

pytestmark = [pytest.mark.ha, pytest.mark.chaos, pytest.mark.outage, pytest.mark.cluster_wide,
              pytest.mark.needs_cluster, pytest.mark.c23]

APISERVER = "kube-apiserver"
OUTAGE_SECONDS = 45
RECOVERY_SECONDS = 180  # the steady state's bound, and the daemon's to heartbeat again
RUN_END_SECONDS = 300


def all_stopped(pids: list[int]) -> Observation[None]:
    states = {pid: process_state(pid) for pid in pids}
    return Observation(all(state == "T" for state in states.values()), f"process states {states}")


def webserver_pod(dagster: Deployment) -> DagsterWebserver:
    """GraphQL straight to a ready endpoint of the webserver Service (a pod's IP and port), without the apiserver."""
    service = dagster.settings.names.webserver_service
    slices = client.DiscoveryV1Api(dagster.api).list_namespaced_endpoint_slice(
        dagster.namespace, label_selector=f"kubernetes.io/service-name={service}").items
    ready = [(address, port.port) for piece in slices for endpoint in piece.endpoints or []
             if endpoint.conditions and endpoint.conditions.ready for address in endpoint.addresses
             for port in piece.ports or []]
    assert ready, f"the webserver Service {dagster.namespace}/{service} has no ready endpoint"
    address, port = ready[0]
    return DagsterWebserver(Endpoint(f"http://{address}:{port}", f"webserver pod {address}:{port}"),
                            request_timeout=10)


def outage_seconds(journal: dict[str, Any]) -> float:
    """From the stop to the continue, as the journal recorded them."""
    return (chaos_run.activity_time(journal, "continue-the-apiserver", "start")
            - chaos_run.activity_time(journal, "stop-the-apiserver", "end"))


def test_runs_survive_the_apiserver_being_unavailable_for_longer_than_the_clients_retries(
    dagster: Deployment, cluster: ClusterInfo, cluster_provider: tuple[Provider, ClusterInfo],
    tmp_path_factory: pytest.TempPathFactory, record_property: pytest.RecordProperty,
) -> None:
    if "local-processes" not in cluster.capabilities:
        pytest.skip(f"C23 needs a provider that can stop the apiserver: local (not {cluster.provider})")
    provider = cluster_provider[0]
    pids = provider.control_plane_pids(APISERVER)
    assert pids, f"no {APISERVER} process of cluster {cluster.name} on this machine"
    direct = webserver_pod(dagster)  # pod IPs are routed only inside the nodes: every call goes from there
    provider.call_in_node_network(direct.version)  # reachable now: a failure below is the outage's, not the route's
    location = dagster.settings.code_locations[0].name
    journal_path = tmp_path_factory.mktemp("chaos") / "pause-apiserver.json"
    variables = {**dagster.chaos_variables, "pids": ",".join(map(str, pids)), "outage_seconds": OUTAGE_SECONDS,
                 "recovery_timeout": RECOVERY_SECONDS}

    with holding(dagster) as in_flight, ThreadPoolExecutor(1) as pool:
        experiment = pool.submit(chaos_run.run, chaos_run.EXPERIMENTS / "pause-apiserver.yaml", variables,
                                 journal_path, cluster.kubeconfig, cluster.context)
        try:
            wait_for(f"every {APISERVER} process ({pids}) to be stopped", lambda: all_stopped(pids), 60, 0.2)
            queued = provider.call_in_node_network(lambda: direct.launch_run(dagster.job("ping"), location))
            if not all_stopped(pids).done:
                raise FaultNotApplied(f"{APISERVER} ran again before run {queued} was launched: not launched during "
                                      "the outage")
            journal = experiment.result(timeout=OUTAGE_SECONDS + 2 * RECOVERY_SECONDS)
        finally:
            continue_processes(",".join(map(str, pids)), APISERVER)  # never leave the cluster stopped
        back_at = time.time()
        down = outage_seconds(journal)
        record_property("apiserver_down_seconds", f"{down:.1f}")
        if down < OUTAGE_SECONDS:
            raise FaultNotApplied(f"{APISERVER} was stopped for {down:.0f}s, not {OUTAGE_SECONDS}s")
        heartbeats = wait_for("every required daemon to heartbeat again after the outage",
                              lambda: daemons_fresh_since(dagster.webserver, back_at), RECOVERY_SECONDS, 2)
        release(dagster, in_flight)
        in_flight_status = dagster.webserver.wait_for_run_status(in_flight, ["SUCCESS"], timeout=RUN_END_SECONDS)
    queued_status = dagster.webserver.wait_for_run_status(queued, ["SUCCESS"], timeout=RUN_END_SECONDS)

    assert journal.get("status") == "completed", (
        f"after the outage the webserver did not answer through the apiserver again: experiment "
        f"{journal.get('status')} (journal {journal_path})")
    assert in_flight_status.value == "SUCCESS"
    assert queued_status.value == "SUCCESS"
    print(f"C23: {APISERVER} {pids} stopped {down:.1f}s; run {in_flight} in flight SUCCESS, run {queued} launched "
          f"meanwhile SUCCESS; daemons {heartbeats} again")
