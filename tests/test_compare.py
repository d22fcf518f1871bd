"""``dkc compare``: two report directories, what changed between them, and the gate's exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.main import main
from reports.allure_files import ReportEnvironment, write_environment
from reports.compare import ReportError, compare, fails_gate, read_report, render_comparison
from reports.plugin import Record, write_records

C3 = "suites/test_control_plane.py::test_a_run_in_flight_finishes[k8s-job-webserver]"
C17 = "suites/test_termination.py::test_a_terminated_run_ends_canceled[k8s-job-resume-1]"
C23 = "suites/test_apiserver_outage.py::test_runs_survive[celery-k8s]"
C27 = "suites/test_max_runtime.py::test_a_run_over_its_max_runtime[celery-k8s-instance]"


def _junit(figures: dict[str, dict[str, str]]) -> str:
    cases = []
    for nodeid, props in figures.items():
        module, name = nodeid.split("::")
        items = "".join(f'<property name="{k}" value="{v}"/>' for k, v in props.items())
        cases.append(f'<testcase classname="{module[:-3].replace("/", ".")}" name="{name}" time="1.0">'
                     f"<properties>{items}</properties></testcase>")
    return f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{"".join(cases)}</testsuite></testsuites>'


def _report(path: Path, outcomes: dict[str, tuple[str, str, str]], figures: dict[str, dict[str, str]],
            dagster: str) -> Path:
    path.mkdir()
    write_records([Record(nodeid, (claim,), combination, outcome)
                   for nodeid, (claim, combination, outcome) in outcomes.items()], path / "matrix.jsonl")
    (path / "junit.xml").write_text(_junit(figures), encoding="utf-8")
    (path / "allure-results").mkdir()
    write_environment(path / "allure-results", ReportEnvironment("local", "v1.34.4", 1, dagster,
                                                                 ["k8s-job", "celery-k8s"], git_revision="abc"))
    return path


@pytest.fixture
def reports(tmp_path: Path) -> tuple[Path, Path]:
    before = _report(tmp_path / "before", {
        C3: ("C3", "k8s-job", "passed"), C17: ("C17", "k8s-job", "xfailed"),
        C23: ("C23", "celery-k8s", "passed"), C27: ("C27", "celery-k8s", "failed"),
    }, {C3: {"recovery_seconds": "20.0"}, C23: {"apiserver_down_seconds": "45.0", "run_outcome_seconds": "x"}},
        "1.12.22")
    after = _report(tmp_path / "after", {
        C3: ("C3", "k8s-job", "failed"), C17: ("C17", "k8s-job", "xpassed"),
        C27: ("C27", "celery-k8s", "passed"),
    }, {C3: {"recovery_seconds": "40.0"}}, "1.13.27")
    return before, after


def test_changes_are_named_by_kind(reports: tuple[Path, Path]) -> None:
    comparison = compare(read_report(reports[0]), read_report(reports[1]))
    kinds = {change.nodeid: change.kind() for change in comparison.changes}
    assert kinds == {C3: "newly failing", C17: "new XPASS", C23: "gone", C27: "newly passing"}
    assert [(f.nodeid, f.name, f.before, f.after) for f in comparison.slower] == [
        (C3, "recovery_seconds", 20.0, 40.0)]


def test_a_figure_that_grew_by_a_few_seconds_only_is_not_worse(tmp_path: Path) -> None:
    for name, value in (("a", "2.0"), ("b", "6.0")):
        _report(tmp_path / name, {C3: ("C3", "k8s-job", "passed")}, {C3: {"recovery_seconds": value}}, "1.13.27")
    assert compare(read_report(tmp_path / "a"), read_report(tmp_path / "b")).slower == []


def test_the_gate_fails_on_any_or_only_on_what_is_new(reports: tuple[Path, Path]) -> None:
    comparison = compare(read_report(reports[0]), read_report(reports[1]))
    assert fails_gate(comparison, "any") and fails_gate(comparison, "new") and not fails_gate(comparison, "none")
    same = compare(read_report(reports[0]), read_report(reports[0]))
    assert fails_gate(same, "any") and not fails_gate(same, "new")  # C27 failed in both: known, not new


def test_the_markdown_shows_both_sides_and_the_environment(reports: tuple[Path, Path]) -> None:
    text = render_comparison(compare(read_report(reports[0]), read_report(reports[1])))
    assert "| Dagster version | 1.12.22 | **1.13.27** |" in text
    assert "**✓ pass → ✗ fail**" in text  # C3 on k8s-job
    assert "## newly failing (1)" in text and f"`{C3}`: passed → failed" in text
    assert "recovery_seconds: 20.0 → 40.0" in text


def test_dkc_compare_writes_the_file_and_sets_the_exit_code(reports: tuple[Path, Path], tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cmp.md"
    assert main(["compare", str(reports[0]), str(reports[1]), "--out", str(out)]) == 1
    assert out.read_text(encoding="utf-8").startswith("# Comparison")
    assert main(["compare", str(reports[0]), str(reports[0]), "--fail-on", "new", "--out", str(out)]) == 0
    assert "0 newly failing or XPASS" in capsys.readouterr().err


def test_a_directory_that_is_no_report_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ReportError, match=r"has no matrix\.jsonl: give a report directory"):
        read_report(tmp_path)
    assert main(["compare", str(tmp_path / "nothing"), str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
