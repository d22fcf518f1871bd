"""C3, first cut: a run in flight finishes SUCCESS while the webserver is killed mid-run, and the
webserver comes back. The fault is applied with chaostoolkit-kubernetes through an experiment file
(chaos/experiments/kill-webserver.yaml) and proven (the pod's UID changed) before the outcome counts."""

from __future__ import annotations

import time

import pytest
from kubernetes import client

from chaos import run as chaos_run
from clusters import ClusterInfo
from deploy.bringup import Deployment
from observation.kube import pod_uids, wait_replacement_ready

pytestmark = [pytest.mark.ha, pytest.mark.chaos, pytest.mark.needs_cluster]

WEBSERVER = "component=dagster-webserver"


def release(dagster: Deployment, run_id: str) -> None:
    """Let the held op of ``run_id`` finish (it watches for this ConfigMap)."""
    dagster.core.create_namespaced_config_map(dagster.namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name=f"dkc-release-{run_id}")))


@pytest.mark.c3
def test_a_run_in_flight_survives_the_webserver_being_killed(
    dagster: Deployment, cluster: ClusterInfo, tmp_path_factory: pytest.TempPathFactory
) -> None:
    run_id = dagster.webserver.launch_run(dagster.job("hold"), dagster.settings.code_locations[0].name)
    dagster.webserver.wait_for_run_status(run_id, ["STARTED"], timeout=180)
    before = pod_uids(dagster.core, dagster.namespace, WEBSERVER)

    faulted_at = time.monotonic()
    journal = chaos_run.run(
        chaos_run.EXPERIMENTS / "kill-webserver.yaml", {"namespace": dagster.namespace},
        tmp_path_factory.mktemp("chaos") / "kill-webserver.json", cluster.kubeconfig, cluster.context)
    killed = chaos_run.action_output(journal, "terminate-one-webserver-pod")

    assert killed and set(killed) <= set(before.values()), f"the experiment terminated {killed}, not a webserver"
    replacement = wait_replacement_ready(dagster.core, dagster.namespace, WEBSERVER, set(before))
    assert replacement.metadata.uid not in before, "the webserver pod was not replaced"
    recovered_in = time.monotonic() - faulted_at
    assert journal["status"] == "completed", f"steady state not restored: experiment {journal['status']}"

    release(dagster, run_id)
    status = dagster.webserver.wait_for_run_status(run_id, ["SUCCESS"], timeout=300)

    assert status.value == "SUCCESS", f"run {run_id} ended {status.value} after the webserver was killed"
    print(f"webserver {killed} replaced by {replacement.metadata.name} Ready {recovered_in:.1f}s after the fault")
