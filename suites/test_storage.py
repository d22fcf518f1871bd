"""Dagster's storage outlives its database pod: the suite's PostgreSQL keeps its data on a PersistentVolume.

The PostgreSQL pod is deleted (proven: it is gone and a pod with a new UID is Ready); what the webserver answers
meanwhile is recorded, not hidden; afterwards the run launched before is still there with its whole event log,
and a new run succeeds. The PostgreSQL is the same for every launcher/executor combination (one manifest), so
this runs on one: k8s-multiprocess.
"""

from __future__ import annotations

import time

import pytest

from chaos.load import RequestLoop
from common.waits import wait_for
from deploy import names
from deploy.deployment import Deployment
from deploy.settings import COMBINATIONS
from observation.health import storage_answers
from observation.kube import pod_ready, pod_summary, wait_gone, wait_replacement_ready
from reports.evidence import attach_json, step

pytestmark = [pytest.mark.conformance, pytest.mark.chaos, pytest.mark.needs_cluster]

POSTGRES_PODS = names.selector(names.POSTGRESQL_COMPONENT)
# initdb's first line: in the new pod's log it would mean the database was created anew.
INITDB_BANNER = "The files belonging to this database system will be owned by user"
RECOVERY_TIMEOUT = 180
# How long a run worker may take to exit after its run ended SUCCESS.
RUN_EXIT_GRACE = 60


# One combination is enough for a property of the PostgreSQL every combination shares.
@pytest.mark.parametrize("dagster", [COMBINATIONS[0]], indirect=True)
def test_runs_and_events_survive_the_replacement_of_the_postgres_pod(
    dagster: Deployment, record_property: pytest.RecordProperty,
) -> None:
    if not dagster.settings.owned:
        pytest.skip(f"the PostgreSQL of the Dagster in {dagster.namespace} is not the suite's: never killed")
    before_id = dagster.run_to_success("ping")
    # The run worker writes its last event ("Process for run exited") after RUN_SUCCESS: the log to compare
    # is complete only once nothing of the run runs.
    still_running = dagster.running_after(before_id, RUN_EXIT_GRACE)
    assert not still_running, f"run {before_id} ended SUCCESS but {RUN_EXIT_GRACE}s later still runs: {still_running}"
    events_before = [(e.event_type, e.step_key, e.message) for e in dagster.webserver.run_events(before_id)]
    (old,) = dagster.core.list_namespaced_pod(dagster.namespace, label_selector=POSTGRES_PODS).items
    assert pod_ready(old), f"PostgreSQL is not Ready before the fault: {pod_summary(old)}"

    with RequestLoop(lambda: dagster.webserver.runs(limit=1), interval=0.5) as loop:
        with step(f"Delete the PostgreSQL pod {old.metadata.name}"):
            dagster.core.delete_namespaced_pod(old.metadata.name, dagster.namespace)
            deleted_at = time.monotonic()
        with step("Proof of fault: the old pod is gone, a new one is Ready"):
            wait_gone(dagster.core.read_namespaced_pod, "pod", dagster.namespace, old.metadata.name,
                      old.metadata.uid, timeout=RECOVERY_TIMEOUT)
            new = wait_replacement_ready(dagster.core, dagster.namespace, POSTGRES_PODS, {old.metadata.uid},
                                         timeout=RECOVERY_TIMEOUT)
            ready_after = time.monotonic() - deleted_at
        recovery_errors: list[str] = []
        with step("Wait until the webserver answers from the database again"):
            wait_for("the webserver to answer runs and events queries again",
                     lambda: storage_answers(dagster.webserver, before_id, recovery_errors), RECOVERY_TIMEOUT,
                     interval=1.0)
            answering_after = time.monotonic() - deleted_at

    failures = loop.answers.failed
    seen = {"deleted": f"{old.metadata.name} ({old.metadata.uid})", "replacement": f"{new.metadata.name} "
            f"({new.metadata.uid})", "replacement Ready after (s)": round(ready_after, 1),
            "webserver answering after (s)": round(answering_after, 1), "requests": len(loop.answers.results),
            "failed requests": len(failures), "longest silence (s)": round(loop.answers.longest_silence, 1),
            "distinct errors": sorted({e[:200] for e in failures})[:5],
            "errors while waiting for the storage": [e[:200] for e in recovery_errors]}
    attach_json("what the webserver answered while PostgreSQL was replaced", seen)
    for key in ("replacement Ready after (s)", "webserver answering after (s)", "failed requests"):
        record_property(key.replace(" ", "_").replace("(s)", "seconds"), str(seen[key]))
    print(f"PostgreSQL {old.metadata.name} deleted: {new.metadata.name} Ready after {ready_after:.1f}s, webserver "
          f"answering after {answering_after:.1f}s; {len(failures)}/{len(loop.answers.results)} requests failed "
          f"meanwhile: {seen['distinct errors'] or 'none'}; then, waiting for runs and events: "
          f"{seen['errors while waiting for the storage'] or 'no error'}")

    new_log = dagster.core.read_namespaced_pod_log(new.metadata.name, dagster.namespace)
    assert INITDB_BANNER not in new_log, f"the new PostgreSQL pod {new.metadata.name} ran initdb: its data was lost"
    after = dagster.webserver.run(before_id)
    assert after.status.value == "SUCCESS", f"run {before_id} is {after.status.value} after PostgreSQL was replaced"
    events_after = [(e.event_type, e.step_key, e.message) for e in dagster.webserver.run_events(before_id)]
    assert events_after == events_before, (
        f"run {before_id} had {len(events_before)} events before PostgreSQL was replaced, {len(events_after)} after")
    new_id = dagster.run_to_success("ping")
    print(f"run {before_id} still SUCCESS with its {len(events_after)} events; new run {new_id} SUCCESS")
