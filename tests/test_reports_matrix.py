"""The conformance matrix: claims as rows in numeric order, combinations as columns, one word a cell."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from reports.claims import CLAIMS
from reports.matrix import cell_text, entries_from, render_matrix, write_matrix
from reports.plugin import Record, write_records


@pytest.mark.parametrize(("outcomes", "expected"), [
    (["passed"], "✓ pass"),
    (["failed"], "✗ fail"),
    (["error"], "✗ fail"),
    (["xpassed"], "! xpass"),
    (["xfailed"], "known issue (xfail)"),
    (["skipped"], "\u2013 skip"),
    (["passed", "passed", "passed"], "✓ 3"),
    (["passed", "passed", "skipped"], "✓ 2 (1 skip)"),
    (["passed", "failed", "error", "xpassed"], "✗ fail 2/4"),
    (["passed", "xpassed", "xfailed"], "! xpass 1/3"),
    (["passed", "xfailed"], "known issue (xfail) 1/2"),
    (["skipped", "skipped"], "\u2013 skip 2/2"),
    ([], " "),
])
def test_cell_text(outcomes: list[str], expected: str) -> None:
    assert cell_text(outcomes) == expected


def rows(markdown: str) -> dict[str, list[str]]:
    """Table rows by claim id: the cells after the claim column."""
    table = {}
    for line in markdown.splitlines():
        if line.startswith("| **C"):
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            table[cells[0].split("**")[1]] = cells[1:]
    return table


def test_rows_are_claims_present_in_numeric_order_with_titles() -> None:
    entries = [("C10", "k8s-job", "passed"), ("C2", "k8s-job", "passed"), ("C1", "celery-k8s", "failed"),
               ("C10", "celery-k8s", "xfailed"), ("C10", "celery-k8s", "xfailed")]
    markdown = render_matrix(entries)
    header = next(line for line in markdown.splitlines() if line.startswith("| Claim"))
    assert header == "| Claim | k8s-multiprocess | k8s-job | celery-k8s |"
    assert list(rows(markdown)) == ["C1", "C2", "C10"]
    assert rows(markdown)["C10"] == ["", "✓ pass", "known issue (xfail) 2/2"]
    assert rows(markdown)["C1"] == ["", "", "✗ fail"]
    assert f"| **C10** {CLAIMS['C10']} |" in markdown
    assert "known issue (xfail): " in markdown, "legend"


def test_tests_without_a_combination_get_their_own_column() -> None:
    markdown = render_matrix([("C1", "—", "passed"), ("C3", "k8s-job", "failed")])
    assert "| Claim | k8s-multiprocess | k8s-job | celery-k8s | — |" in markdown
    assert rows(markdown)["C1"] == ["", "", "", "✓ pass"]


def test_every_claim_marker_has_a_short_title() -> None:
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    markers = re.findall(r'"c(\d+): claim C\d+ of the design card"', pyproject)
    assert list(CLAIMS) == [f"C{number}" for number in sorted(map(int, markers))]
    assert all(0 < len(title) <= 80 and "|" not in title for title in CLAIMS.values())


def test_from_recorder_file_to_markdown(tmp_path: Path) -> None:
    records = [Record("s.py::test_a[k8s-job]", ("C6", "C7"), "k8s-job", "passed"),
               Record("s.py::test_b", (), "—", "failed")]  # no claim: not in the matrix
    entries = entries_from(write_records(records, tmp_path / "matrix.jsonl"))
    assert entries == [("C6", "k8s-job", "passed"), ("C7", "k8s-job", "passed")]
    path = write_matrix(entries, tmp_path / "out" / "matrix.md")
    assert list(rows(path.read_text(encoding="utf-8"))) == ["C6", "C7"]


def test_an_empty_run_says_so() -> None:
    assert "no test with a claim marker ran" in render_matrix([])
