"""Self-tests: tests share the cluster, and a test whose fault hits the whole cluster has it alone (flock on temp
files; each thread opens its own, as each xdist worker does)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from clusters import session
from clusters.session import Use

PATIENCE = 5.0  # seconds a thread may take to get where the test expects it


def test_tests_share_the_cluster_and_nest(tmp_path: Path) -> None:
    one, other = Use(tmp_path / "c.lock"), Use(tmp_path / "c.lock")
    with one.shared(), one.shared(), other.shared():
        pass
    with one.alone("never said: nobody holds it"):
        pass


def test_a_test_alone_waits_for_the_tests_beside_it_and_the_next_ones_wait_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    reader, writer, latecomer = (Use(tmp_path / "c.lock") for _ in range(3))
    said: list[str] = []
    order: list[str] = []
    writer_waits, latecomer_started = threading.Event(), threading.Event()

    def be_alone() -> None:
        with writer.alone("waiting"):
            order.append("alone")

    def share_late() -> None:
        latecomer_started.set()
        with latecomer.shared():
            order.append("latecomer")

    monkeypatch.setattr(session, "say", lambda message: (said.append(message), writer_waits.set()))
    with reader.shared():
        alone = threading.Thread(target=be_alone)
        alone.start()
        assert writer_waits.wait(PATIENCE), "the test to be alone never said it waits"
        late = threading.Thread(target=share_late)
        late.start()
        assert latecomer_started.wait(PATIENCE)
        alone.join(0.3)
        assert alone.is_alive() and not order, "the test to be alone ran beside a test sharing the cluster"
        order.append("reader ends")
    alone.join(PATIENCE)
    late.join(PATIENCE)
    assert said == ["waiting"]
    assert order == ["reader ends", "alone", "latecomer"], "a test started beside the one alone on the cluster"
