"""bench/suite.py's arithmetic (phases without double counting) and the timings the suite writes for it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.suite import category, minus, phase_seconds, union_seconds
from common import timings
from common.progress import phase
from common.waits import Observation, wait_for


def test_overlapping_intervals_count_once() -> None:
    assert union_seconds([(0, 10), (5, 15), (20, 25)]) == 20
    assert minus((0, 10), [(2, 4), (6, 8)]) == [(0, 2), (4, 6), (8, 10)]


def test_a_wait_inside_a_deploy_phase_counts_as_deploy() -> None:
    spans = [
        {"kind": "phase", "title": "Deploying celery-k8s", "start": 0, "end": 60, "worker": "gw0"},
        {"kind": "wait", "title": "code location alpha to load", "start": 50, "end": 70, "worker": "gw0"},
        {"kind": "wait", "title": "run abc to reach SUCCESS", "start": 80, "end": 90, "worker": "gw0"},
        {"kind": "wait", "title": "run def to reach SUCCESS", "start": 80, "end": 95, "worker": "gw1"},
    ]
    assert phase_seconds(spans) == {"deploy": 60, "fault -> recovery": 10, "run -> end": 25}


@pytest.mark.parametrize(("kind", "title", "expected"), [
    ("phase", "Rolling the control plane of dkc-k8s-job onto its new instance config", "deploy"),
    ("wait", "run 1 to reach STARTED", "launch -> STARTED"),
    ("wait", "run 1 to reach FAILURE or CANCELED", "run -> end"),
    ("wait", "the daemon to heartbeat again", "fault -> recovery"),
    ("evidence", "C3 · ...", "evidence"),
])
def test_categories(kind: str, title: str, expected: str) -> None:
    assert category(kind, title) == expected


def test_phases_and_waits_are_written_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "timings.jsonl"
    with phase("Deploying nothing"):
        pass
    assert not path.exists()
    monkeypatch.setenv(timings.ENV, str(path))
    with phase("Deploying nothing"):
        wait_for("a thing", lambda: Observation(True, "there"), 1)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["kind"], line["title"]) for line in lines] == [("wait", "a thing"), ("phase", "Deploying nothing")]
    assert lines[0]["test"].startswith("tests/test_bench_suite.py::")
