"""C3: a run in flight finishes SUCCESS while the webserver, the daemon, the code location server — each
alone, then all three — is killed, and the killed component comes back Ready.

The run's op is held until the test releases it, so the fault surely hits mid-run. Faults are applied
with chaostoolkit-kubernetes through the experiment files in chaos/experiments (the same files run by hand
with `chaos run`), and proven (killed pods were the component's, new UIDs are Ready) before the outcome
counts."""

from __future__ import annotations

import time

import pytest

from chaos.faults import Fault, apply, control_plane_faults
from clusters import ClusterInfo
from deploy.bringup import Deployment
from deploy.images import LOCATION_NAMES
from workloads.hold import release

pytestmark = [pytest.mark.ha, pytest.mark.chaos, pytest.mark.needs_cluster]

LOCATION = LOCATION_NAMES[0]  # the held run comes from the first location; its server is the one killed


@pytest.mark.c3
@pytest.mark.parametrize("fault", control_plane_faults(LOCATION, list(LOCATION_NAMES)), ids=lambda f: f.name)
def test_a_run_in_flight_finishes_while_a_control_plane_component_is_killed(
    dagster: Deployment, cluster: ClusterInfo, held_run: str, fault: Fault,
    tmp_path_factory: pytest.TempPathFactory, record_property: pytest.RecordProperty,
) -> None:
    run_id = held_run
    applied = apply(fault, dagster.core, dagster.namespace, tmp_path_factory.mktemp("chaos") / f"{fault.name}.json",
                    cluster.kubeconfig, cluster.context)
    record_property("killed_pods", " ".join(applied.killed))
    record_property("replacement_ready_seconds", f"{applied.recovered_seconds:.1f}")
    assert applied.experiment_status == "completed", (
        f"after killing {applied.killed} the steady state did not come back: experiment {applied.experiment_status}"
        f" (journal {applied.journal})")

    released_at = time.monotonic()
    release(dagster.core, dagster.namespace, run_id)
    status = dagster.webserver.wait_for_run_status(run_id, ["SUCCESS"], timeout=300)

    assert status.value == "SUCCESS", f"run {run_id} ended {status.value} after {fault.name} was killed"
    record_property("release_to_success_seconds", f"{time.monotonic() - released_at:.1f}")
    print(f"{fault.name}: killed {applied.killed}, replaced by {sorted(applied.replacements.values())}, "
          f"Ready {applied.recovered_seconds:.1f}s after the fault; run {run_id} SUCCESS")
