"""A pytest plugin that records, per test, its claims, its combination and its outcome, for the matrix.

JUnit XML carries neither markers nor xfail reasons reliably, so the plugin writes its own JSON-lines
file. It listens to ``pytest_runtest_logreport``, which under pytest-xdist also runs on the controller
for every report a worker sends (reports carry ``nodeid``, ``keywords``, ``when``, ``outcome`` and
``wasxfail``), and only the controller writes the file.

Register it from a conftest::

    def pytest_configure(config):
        config.pluginmanager.register(MatrixRecorder(REPORT_DIR / "matrix.jsonl"), "dkc-matrix")
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.settings import COMBINATIONS

__all__ = ["NO_COMBINATION", "OUTCOMES", "MatrixRecorder", "Record", "read_records", "write_records"]

NO_COMBINATION = "—"
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
_CLAIM_MARKER = re.compile(r"c(3[01]|[12][0-9]|[1-9])")  # c1 … c31, the design card's claims
_PARAM_ID = re.compile(r"\[(?P<id>.*)\]$")


@dataclass(frozen=True)
class Record:
    """One test: where it sits in the matrix and how it ended."""

    nodeid: str
    claims: tuple[str, ...]
    combination: str
    outcome: str

    def entries(self) -> Iterator[tuple[str, str, str]]:
        """``(claim, combination, outcome)`` for each claim the test checks (the matrix's input)."""
        for claim in self.claims:
            yield claim, self.combination, self.outcome


def claims_of(keywords: Iterable[str]) -> tuple[str, ...]:
    """``C1``…``C31`` from the test's ``c1``…``c31`` markers (names, or a report's keywords), in numeric order."""
    numbers = sorted(int(match[1]) for name in keywords if (match := _CLAIM_MARKER.fullmatch(name)))
    return tuple(f"C{number}" for number in numbers)


def without_group(nodeid: str) -> str:
    """A test's id without the ``@<combination>`` xdist's loadgroup appends to it."""
    base, _, group = nodeid.rpartition("@")
    return base if base and group in COMBINATIONS else nodeid


def combination_of(nodeid: str, keywords: Mapping[str, Any]) -> str:
    """The combination the test ran on: its combination marker (set from the ``dagster`` fixture's
    param), else a combination named as a whole part of its parameter id, else ``—``."""
    for combination in COMBINATIONS:
        if combination.replace("-", "_") in keywords:
            return combination
    param = _PARAM_ID.search(nodeid)
    if param:
        padded = f"-{param['id']}-"
        for combination in COMBINATIONS:
            if f"-{combination}-" in padded:
                return combination
    return NO_COMBINATION


def phase_outcome(report: pytest.TestReport) -> str | None:
    """What one phase says about the test; ``None`` for a setup or teardown that passed (says nothing)."""
    expected_failure = hasattr(report, "wasxfail")
    if report.outcome == "skipped":
        return "xfailed" if expected_failure else "skipped"
    if report.when == "call":
        if report.outcome == "passed":
            return "xpassed" if expected_failure else "passed"
        # A strict xfail that passed is reported as failed; the matrix shows it as the fixed known issue.
        return "xpassed" if str(report.longrepr).startswith("[XPASS(strict)]") else "failed"
    return None if report.outcome == "passed" else "error"


def merge_outcome(previous: str | None, phase: str | None) -> str:
    """Fold a phase into the test's outcome: setup decides unless it passed, call decides next, and a
    failing teardown turns anything but a failure into an error (as pytest counts it)."""
    if phase is None:
        return previous or "passed"
    if previous is None or previous == "passed":
        return phase
    if phase == "error" and previous not in ("failed", "error"):
        return "error"
    return previous


class MatrixRecorder:
    """Collects one ``Record`` per test from its reports and writes them as JSON lines at session end."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.records: dict[str, Record] = {}

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        previous = self.records.get(report.nodeid)
        outcome = merge_outcome(previous.outcome if previous else None, phase_outcome(report))
        self.records[report.nodeid] = Record(
            report.nodeid, claims_of(report.keywords), combination_of(report.nodeid, report.keywords), outcome
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput"):
            return  # an xdist worker: the controller saw the same reports and writes the file
        write_records(self.records.values(), self.path)


def write_records(records: Iterable[Record], path: Path) -> Path:
    """Write records as JSON lines, atomically (a reader never sees half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with partial.open("w", encoding="utf-8") as handle:
        for record in records:
            line = {"nodeid": record.nodeid, "claims": list(record.claims),
                    "combination": record.combination, "outcome": record.outcome}
            handle.write(json.dumps(line, ensure_ascii=False) + "\n")
    partial.replace(path)
    return path


def read_records(path: Path) -> list[Record]:
    """Records from a file ``write_records`` wrote."""
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            data = json.loads(line)
            records.append(Record(data["nodeid"], tuple(data["claims"]), data["combination"], data["outcome"]))
    return records
