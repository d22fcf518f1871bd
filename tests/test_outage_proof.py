"""Self-tests of the proof of a dependency outage (chaos.outages.apply_outage): the old pods are gone, the new one
was made only after the dependency was given back, and a stop lasted as long as asked.

chaos.run.run is a fake that changes a fake cluster as the experiment would (or would not); the waits' clock is
fake (the fixtures of tests/test_fault_proof.py).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from chaos import outages
from chaos import run as chaos_run
from chaos.faults import FaultNotApplied
from tests.test_fault_proof import NS, Experiment, FakeCore, no_waiting  # noqa: F401 (an autouse fixture)

PG = "app=postgresql"
T0 = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def pg_pod(name: str, uid: str, created: float, ready: float) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, uid=uid, namespace=NS, creation_timestamp=at(created)),
        status=client.V1PodStatus(phase="Running", conditions=[
            client.V1PodCondition(type="Ready", status="True", last_transition_time=at(ready))]))


def journal(*activities: tuple[str, float, float, Any]) -> dict[str, Any]:
    return {"status": "completed", "run": [
        {"activity": {"name": name}, "status": "succeeded", "output": output,
         "start": at(start).isoformat(), "end": at(end).isoformat()} for name, start, end, output in activities]}


def apply(monkeypatch: pytest.MonkeyPatch, outage: outages.Outage, core: FakeCore, experiment: Experiment,
          tmp_path: Path) -> outages.AppliedOutage:
    monkeypatch.setattr(chaos_run, "run", experiment)
    return outages.apply_outage(outage, core, NS, tmp_path / "journal.json", tmp_path / "kubeconfig",  # type: ignore[arg-type]
                                None, {"webserver_service": "web"}, recovery_timeout=0.2)


STOP = outages.Outage("postgresql", "dagster-postgresql", PG, 45)
RESTART = outages.Outage("postgresql", "dagster-postgresql", PG)


def test_a_stop_is_proven_by_its_length_and_a_pod_made_after_it(monkeypatch: pytest.MonkeyPatch,
                                                                tmp_path: Path) -> None:
    core = FakeCore({PG: [pg_pod("pg-a", "uid-a", -600, -590)]})
    experiment = Experiment(journal((outages.STOP_ACTION, 0, 0.1, None), (outages.START_ACTION, 45.2, 45.3, None)),
                            lambda: core.pods.__setitem__(PG, [pg_pod("pg-b", "uid-b", 45.5, 49.0)]))

    applied = apply(monkeypatch, STOP, core, experiment, tmp_path)

    assert (applied.old_pods, applied.replacement) == (["pg-a"], "pg-b")
    assert applied.down_seconds == pytest.approx(49.0)
    assert (applied.down_from, applied.back_from) == (at(0).timestamp(), at(45.2).timestamp())
    assert experiment.calls[0]["experiment"] == "stop-dependency.yaml"
    assert experiment.calls[0]["variables"]["outage_seconds"] == 45, "a number, typed for chaostoolkit"


def test_a_stop_that_did_not_pause_is_no_outage(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """What an untyped pause ("45") did: scaled to zero and back in the same second."""
    core = FakeCore({PG: [pg_pod("pg-a", "uid-a", -600, -590)]})
    experiment = Experiment(journal((outages.STOP_ACTION, 0, 0.1, None), (outages.START_ACTION, 0.2, 0.3, None)),
                            lambda: core.pods.__setitem__(PG, [pg_pod("pg-b", "uid-b", 0.5, 3.0)]))

    with pytest.raises(FaultNotApplied, match="started again 0s after it was stopped, not after 45s"):
        apply(monkeypatch, STOP, core, experiment, tmp_path)


def test_a_new_pod_made_before_the_dependency_was_given_back_means_it_was_never_away(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    core = FakeCore({PG: [pg_pod("pg-a", "uid-a", -600, -590)]})
    experiment = Experiment(journal((outages.STOP_ACTION, 0, 0.1, None), (outages.START_ACTION, 45.2, 45.3, None)),
                            lambda: core.pods.__setitem__(PG, [pg_pod("pg-b", "uid-b", 1.0, 4.0)]))

    with pytest.raises(FaultNotApplied, match="was made before the dependency was given back"):
        apply(monkeypatch, STOP, core, experiment, tmp_path)


def test_a_restart_must_kill_a_pod_of_the_dependency(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    core = FakeCore({PG: [pg_pod("pg-a", "uid-a", -600, -590)]})
    experiment = Experiment(journal((outages.RESTART_ACTION, 0, 0.1, ["redis-x"])))

    with pytest.raises(FaultNotApplied, match=r"terminated \['redis-x'\], not a pod of postgresql"):
        apply(monkeypatch, RESTART, core, experiment, tmp_path)


def test_nothing_to_take_away_is_said_before_anything_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    experiment = Experiment(journal())
    with pytest.raises(FaultNotApplied, match="no pod of postgresql"):
        apply(monkeypatch, RESTART, FakeCore({}), experiment, tmp_path)
    assert not experiment.calls
