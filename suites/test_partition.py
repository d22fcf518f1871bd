"""C29: a run's pods cut off from PostgreSQL (a network partition) while its op holds: the run ends within its
max runtime (the ``dagster/max_runtime`` tag) plus run monitoring's poll interval, never hangs, and nothing of it
is left running.

The partition (chaos/partition.py) is a firewall rule in the run pod's node where the nodes are on this machine
(local, kind), a NetworkPolicy elsewhere; it is proven before the outcome counts: a connect from the run pod to
PostgreSQL fails while one from the daemon's pod succeeds. A cluster that enforces no NetworkPolicy is skipped,
saying so.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager

import pytest
from kubernetes import client

from chaos import partition
from chaos.faults import ControlPlane
from clusters import ClusterError, ClusterInfo
from clusters.provider import Provider
from deploy import names
from deploy.deployment import Deployment
from suites.hold import holding
from suites.instance import require_run_monitoring
from suites.known import known_defect

pytestmark = [pytest.mark.conformance, pytest.mark.chaos, pytest.mark.needs_cluster, pytest.mark.c29]

MAX_RUNTIME_SECONDS = 90  # the hold on a loaded node (up to ~35 s) and the partition's proof fit well inside
MARGIN_SECONDS = 60  # the daemon's loop, the GraphQL read, a loaded node
GRACE_SECONDS = 60  # after the end: the deleted Job's pods get their termination grace period
POSTGRES_PORT = 5432

STEP_JOB_OUTLIVES_THE_RUN = known_defect(
    "dagster-io/dagster#21476's kind, no issue found for the partition itself: K8sRunLauncher.terminate deletes "
    "only the run Job, and the run worker, cut off from PostgreSQL, does not get to terminate its step Jobs (they "
    "carry no owner reference by default): seen on k8s-job, the held step's Job and pod kept running after the "
    "run was FAILURE at its max runtime, and the step finished its op a minute later")


def cut_off(provider: Provider, dagster: Deployment, run_id: str, pod: client.V1Pod,
            database: str) -> AbstractContextManager[str]:
    """A firewall rule in the pod's node if the provider's nodes are here, else a NetworkPolicy."""
    try:
        provider.node_network_command(pod.spec.node_name, [])
    except ClusterError:
        return partition.policy_cut_off(dagster.networking, dagster.namespace, run_id, database)
    return partition.firewalled(lambda argv: provider.node_network_command(pod.spec.node_name, argv),
                                pod.spec.node_name, pod.status.pod_ip, database, f"dkc-cut-off-{run_id[:8]}")


@pytest.mark.parametrize("owner_references", [False, True], ids=["defaults", "owner-references"])
def test_a_run_cut_off_from_postgresql_ends_within_its_max_runtime_and_leaves_nothing_running(
    dagster: Deployment, control_plane: ControlPlane, cluster_provider: tuple[Provider, ClusterInfo],
    owner_references: bool, record_property: pytest.RecordProperty, request: pytest.FixtureRequest,
) -> None:
    settings = dagster.settings
    if owner_references and settings.combination != "k8s-job":
        pytest.skip("enable_owner_references is a setting of k8s_job_executor (the k8s-job combination)")
    require_run_monitoring(dagster, "enforces max runtimes")
    if settings.combination == "k8s-job" and not owner_references:
        request.applymarker(STEP_JOB_OUTLIVES_THE_RUN)  # step Jobs only exist with k8s_job_executor
    run_config = {"execution": {"config": {"enable_owner_references": True}}} if owner_references else None
    databases = dagster.core.list_namespaced_pod(dagster.namespace, label_selector=names.POSTGRESQL_SELECTOR).items
    if not databases or not databases[0].status.pod_ip:
        pytest.skip(f"PostgreSQL is not a running pod in {dagster.namespace}: C29 cuts the run off from that pod")
    database = databases[0].status.pod_ip
    daemon = dagster.core.list_namespaced_pod(dagster.namespace, label_selector=control_plane.daemon).items[0]
    bound = MAX_RUNTIME_SECONDS + settings.run_monitoring_poll_interval_seconds + MARGIN_SECONDS

    with holding(dagster, tags={"dagster/max_runtime": str(MAX_RUNTIME_SECONDS)}, run_config=run_config) as run_id:
        pod = dagster.footprint(run_id).run_pods[0]
        run_pod = pod.metadata.name
        with cut_off(cluster_provider[0], dagster, run_id, pod, database) as policy:
            try:
                proof = partition.prove(dagster.api, dagster.namespace, policy, (run_pod, None),
                                        (daemon.metadata.name, None), database, POSTGRES_PORT)
            except partition.NotEnforced as exc:
                pytest.skip(str(exc))
            record_property("cut_off_connect", proof.cut_off.said)
            started = dagster.webserver.run(run_id).start_time or time.time()
            status = dagster.webserver.wait_for_run_status(
                run_id, ["FAILURE", "CANCELED", "SUCCESS"], timeout=max(1.0, started + bound - time.time()))
            run = dagster.webserver.run(run_id)
            left = dagster.running_after(run_id, GRACE_SECONDS)
        cause = dagster.webserver.cause_of(run_id)

    ran = (run.end_time or time.time()) - started
    record_property("start_to_end_seconds", f"{ran:.1f}")
    assert proof.proven_at < started + MAX_RUNTIME_SECONDS, (
        f"the partition was proven {proof.proven_at - started:.0f}s after run {run_id} started, after its max "
        f"runtime {MAX_RUNTIME_SECONDS}s: the run was never partitioned while it should still run")
    assert status.value == "FAILURE", f"run {run_id}, cut off from PostgreSQL, ended {status.value}{cause}"
    assert ran <= bound, (
        f"run {run_id}, cut off from PostgreSQL, ended {ran:.0f}s after it started; promised within its max runtime "
        f"{MAX_RUNTIME_SECONDS}s + the poll interval {settings.run_monitoring_poll_interval_seconds}s + "
        f"{MARGIN_SECONDS}s")
    assert not left, f"{GRACE_SECONDS}s after run {run_id} ended {status.value}, still running: {'; '.join(left)}"
    print(f"run {run_id}: cut off from PostgreSQL by {policy} (from {run_pod}: {proof.cut_off.said}; from "
          f"{daemon.metadata.name}: {proof.outside.said}), FAILURE {ran:.1f}s after it started{cause}")
