"""Killing the control plane.

C3 a run in flight finishes SUCCESS while the webserver, the daemon, the code location server — each
   alone, then all three — is killed, and the killed component comes back Ready.
C4 with two webserver replicas, GraphQL keeps answering through the Service while one is killed.

The run's op is held until the test releases it, so the fault surely hits mid-run. Faults are applied
with chaostoolkit-kubernetes through the experiment files in chaos/experiments (the same files run by hand
with `chaos run`), and proven (killed pods were the component's, new UIDs are Ready) before the outcome
counts."""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext

import pytest

from chaos.faults import CONTROL_PLANE_FAULTS, ControlPlane, apply, control_plane_fault, webserver_fault
from chaos.load import RequestLoop
from clusters import ClusterInfo
from common.waits import Observation, wait_for
from dagster_api import DagsterWebserver
from deploy.bringup import reconfigured
from deploy.deployment import Deployment
from deploy.images import LOCATION_NAMES
from observation.kube import pod_uids
from suites.hold import release

pytestmark = [pytest.mark.ha, pytest.mark.chaos, pytest.mark.needs_cluster]

LOCATION = LOCATION_NAMES[0]  # the held run comes from the first location; its server is the one killed


@pytest.mark.c3
@pytest.mark.parametrize("component", CONTROL_PLANE_FAULTS)
def test_a_run_in_flight_finishes_while_a_control_plane_component_is_killed(
    dagster: Deployment, cluster: ClusterInfo, control_plane: ControlPlane, held_run: str, component: str,
    tmp_path_factory: pytest.TempPathFactory, record_property: pytest.RecordProperty,
) -> None:
    run_id = held_run
    fault = control_plane_fault(component, control_plane, LOCATION)
    applied = apply(fault, dagster.core, dagster.namespace, tmp_path_factory.mktemp("chaos") / f"{fault.name}.json",
                    cluster.kubeconfig, cluster.context, variables=dagster.chaos_variables)
    record_property("killed_pods", " ".join(applied.killed))
    record_property("replacement_ready_seconds", f"{applied.recovered_seconds:.1f}")
    assert applied.experiment_status == "completed", (
        f"after killing {applied.killed} the steady state did not come back: experiment {applied.experiment_status}"
        f" (journal {applied.journal})")

    released_at = time.monotonic()
    release(dagster, run_id)
    status = dagster.webserver.wait_for_run_status(run_id, ["SUCCESS"], timeout=300)

    assert status.value == "SUCCESS", f"run {run_id} ended {status.value} after {fault.name} was killed"
    record_property("release_to_success_seconds", f"{time.monotonic() - released_at:.1f}")
    print(f"{fault.name}: killed {applied.killed}, replaced by {sorted(applied.replacements.values())}, "
          f"Ready {applied.recovered_seconds:.1f}s after the fault; run {run_id} SUCCESS")


# "Keeps answering": no span without an answer longer than this (the apiserver's proxy needs the endpoint
# of the killed pod to be removed from the Service before it stops picking it).
SILENCE_LIMIT_SECONDS = 5.0
REQUESTS_AFTER_RECOVERY = 10


def two_webserver_replicas(dagster: Deployment) -> AbstractContextManager[Deployment]:
    """Ours is scaled to two replicas for the test; someone else's is tested as it runs (the claim needs two)."""
    return reconfigured(dagster, webserver_replicas=2) if dagster.settings.owned else nullcontext(dagster)


@pytest.mark.c4
def test_graphql_keeps_answering_while_one_of_two_webserver_replicas_is_killed(
    dagster: Deployment, cluster: ClusterInfo, control_plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory,
    record_property: pytest.RecordProperty,
) -> None:
    with two_webserver_replicas(dagster) as replicated:
        names = replicated.settings.names
        replicas = pod_uids(replicated.core, replicated.namespace, control_plane.webserver)
        assert len(replicas) >= 2, (
            f"the webserver runs {len(replicas)} replica(s) {sorted(replicas.values())}: GraphQL cannot keep answering "
            f"while one is killed (scale Deployment {replicated.namespace}/{names.webserver} to 2 or more)")
        graphql = DagsterWebserver.through_service_proxy(replicated.api, replicated.namespace, names.webserver_service,
                                                         names.webserver_port, request_timeout=5)
        with RequestLoop(graphql.version) as loop:
            applied = apply(webserver_fault(control_plane), replicated.core, replicated.namespace,
                            tmp_path_factory.mktemp("chaos") / "c4-webserver.json", cluster.kubeconfig, cluster.context,
                            variables=replicated.chaos_variables)
            enough = len(loop.answers.results) + REQUESTS_AFTER_RECOVERY
            wait_for(f"{REQUESTS_AFTER_RECOVERY} requests after the replacement was Ready",
                     lambda: Observation(len(loop.answers.results) >= enough, f"{len(loop.answers.results)} requests"),
                     60)
    answers = loop.answers
    record_property("requests", str(len(answers.results)))
    record_property("failed_requests", str(len(answers.failed)))
    record_property("longest_silence_seconds", f"{answers.longest_silence:.1f}")

    assert answers.longest_silence <= SILENCE_LIMIT_SECONDS, (
        f"GraphQL did not answer for {answers.longest_silence:.1f}s while {applied.killed} was killed "
        f"({len(answers.failed)} of {len(answers.results)} requests failed, e.g. {answers.failed[:2]})")
    print(f"C4: {len(answers.failed)} of {len(answers.results)} requests failed, longest silence "
          f"{answers.longest_silence:.1f}s; {applied.killed} replaced in {applied.recovered_seconds:.1f}s")
