"""C30: the node under a run's pod is drained (a cluster of more than one node): the run is resumed on another
node (the K8s run launcher with resume attempts) or ends FAILURE within run monitoring's poll interval
[#3705, #17403].

The run holds in its op; the node its run pod runs on is drained (cordoned, its pods evicted as `kubectl drain`
does). The fault is proven first: the node is cordoned and the run's pods that were on it are gone. Where the
instance sends run pods to labelled nodes, a second node gets the label for the test, so that "elsewhere" exists.
The node is uncordoned afterwards whatever happened. A drain evicts every pod on the node, so the test runs alone.
"""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from chaos import nodes
from clusters import ClusterInfo
from deploy import names
from deploy.deployment import Deployment
from observation.kube import watch_until
from suites.hold import holding, release
from suites.instance import instance_with

pytestmark = [pytest.mark.ha, pytest.mark.chaos, pytest.mark.cluster_wide, pytest.mark.multi_node,
              pytest.mark.needs_cluster, pytest.mark.c30]

MARGIN_SECONDS = 60  # the Job controller noticing the evicted pod, one daemon loop, the GraphQL read
RESUME_SECONDS = 300


def run_node_selector(dagster: Deployment) -> dict[str, str]:
    """The node selector the instance gives run pods (empty: any node)."""
    return dict((dagster.settings.run_k8s_config.get("pod_spec_config") or {}).get("node_selector") or {})


def other_node(dagster: Deployment, drained: str) -> str:
    """A node other than ``drained`` that takes pods, or skip: a drain with nowhere else to go proves nothing."""
    others = [name for name in nodes.schedulable_nodes(dagster.core) if name != drained]
    if not others:
        pytest.skip(f"C30 needs a second node that takes pods besides {drained}: run with --cluster kind --nodes 3")
    return others[0]


CANNOT_RESUME = ("CeleryK8sRunLauncher cannot resume runs: Dagster refuses to start an instance that sets "
                 "max_resume_run_attempts > 0 with it (its drained runs are checked without resume)")


@pytest.mark.parametrize("resume", [
    pytest.param(False, id="no-resume"),
    pytest.param(True, id="resume", marks=pytest.mark.combinations("k8s-multiprocess", "k8s-job",
                                                                     reason=CANNOT_RESUME))])
def test_a_run_whose_node_is_drained_is_resumed_elsewhere_or_fails_within_the_poll_interval(
    dagster: Deployment, cluster: ClusterInfo, resume: bool, tmp_path_factory: pytest.TempPathFactory,
    record_property: pytest.RecordProperty,
) -> None:
    wanted = {"run_monitoring": True, "max_resume_run_attempts": 1 if resume else 0}
    selector = run_node_selector(dagster)
    with instance_with(dagster, **wanted) as deployment, holding(deployment) as run_id:
        before = deployment.footprint(run_id)
        pods = [pod.metadata.name for pod in before.run_pods]
        assert len(pods) == 1, f"expected one run pod for {run_id}: {pods}"
        node = before.run_pods[0].spec.node_name
        on_node = [pod for pod in before.pods if pod.spec.node_name == node]
        elsewhere = other_node(deployment, node)
        journal = tmp_path_factory.mktemp("chaos") / "drain-node.json"
        try:
            with nodes.labelled(deployment.core, elsewhere, selector):
                drained = nodes.drain(deployment.core, node, on_node, deployment.chaos_variables, journal,
                                      cluster.kubeconfig, cluster.context)
                record_property("drained_node", node)
                if resume:
                    resumed_pod = _resumed_pod(deployment, run_id)
                    release(deployment, run_id)
                    status = deployment.webserver.wait_for_run_status(run_id, ["SUCCESS", "FAILURE"],
                                                                      timeout=RESUME_SECONDS)
                    interrupted = interrupted_steps(deployment, run_id)
                else:
                    status = deployment.webserver.wait_for_run_status(run_id, ["FAILURE"], timeout=300)
        finally:
            nodes.uncordon(deployment.core, node)
        run = deployment.webserver.run(run_id)
        cause = deployment.webserver.cause_of(run_id)

    after_drain = (run.end_time or time.time()) - drained.started_at
    record_property("drain_to_end_seconds", f"{after_drain:.1f}")
    bound = deployment.settings.run_monitoring_poll_interval_seconds + MARGIN_SECONDS
    if resume:
        assert resumed_pod.spec.node_name != node, f"run {run_id} was resumed on the drained node {node}"
        record_property("resumed_on", resumed_pod.spec.node_name)
        # The claim's either-or: a resumed run whose step the same drain interrupted ends FAILURE (the step was
        # recorded failed, and resuming from failure does not run it again); it must do so in time, not dangle.
        if status.value == "FAILURE":
            assert after_drain <= bound, (
                f"run {run_id}, resumed on {resumed_pod.spec.node_name}, ended FAILURE {after_drain:.0f}s after its "
                f"node {node} was drained; promised within the poll interval + {MARGIN_SECONDS}s{cause}")
            assert interrupted, f"run {run_id} was resumed and ended FAILURE, with no step interrupted{cause}"
        print(f"run {run_id}: {node} drained, resumed in pod {resumed_pod.metadata.name} on "
              f"{resumed_pod.spec.node_name}, {status.value} {after_drain:.1f}s after the drain began"
              + (f" (step(s) {', '.join(interrupted)} interrupted by the drain were not run again)"
                 if status.value == "FAILURE" else ""))
        return
    assert after_drain <= bound, (
        f"run {run_id} ended FAILURE {after_drain:.0f}s after its node {node} was drained; promised within the poll "
        f"interval {deployment.settings.run_monitoring_poll_interval_seconds}s + {MARGIN_SECONDS}s{cause}")
    print(f"run {run_id}: {node} drained ({len(drained.evicted)} pods of the namespace on it), FAILURE "
          f"{after_drain:.1f}s after the drain began{cause}")


def interrupted_steps(dagster: Deployment, run_id: str) -> list[str]:
    """The steps whose STEP_FAILURE is an interrupt (the drain's SIGTERM reaching the step's process)."""
    return sorted({e.step_key for e in dagster.webserver.run_events(run_id) if e.event_type == "STEP_FAILURE"
                   and e.step_key and "DagsterExecutionInterruptedError" in (e.error or "")})


def _resumed_pod(dagster: Deployment, run_id: str) -> client.V1Pod:
    """The pod of the resumed run's Job (dagster-run-<id>-1), once it is scheduled on a node."""
    resumed_job = f"{names.run_job_name(run_id)}-1"
    return watch_until(dagster.core.list_namespaced_pod, f"a scheduled pod of Job {resumed_job} (the resumed run)",
                       lambda pod: bool(pod.spec.node_name), RESUME_SECONDS, namespace=dagster.namespace,
                       label_selector=f"job-name={resumed_job}")
