"""Two reports side by side: what changed between them (last night's and tonight's, Dagster 1.12 and 1.13).

A report directory is what ``./dkc run`` writes: ``matrix.jsonl`` (each test's claims, combination and outcome),
``junit.xml`` (the figures tests record, e.g. ``*_seconds``) and ``allure-results/environment.properties``
(what it ran against). The comparison is keyed by test node id, so a test that moved to another combination
or got another parameter shows as one gone and one new.
"""

from __future__ import annotations

import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import DkcError
from reports.claims import claim_number
from reports.matrix import matrix_cells
from reports.plugin import Record, read_records

__all__ = ["BAD", "Change", "Comparison", "FigureChange", "ReportError", "SideReport", "compare", "fails_gate",
           "read_report", "render_comparison"]

BAD = ("failed", "error", "xpassed")  # what a gate fails on (an XPASS is a strict xfail whose defect is gone)
MATRIX_RECORDS, JUNIT, ENVIRONMENT = "matrix.jsonl", "junit.xml", "allure-results/environment.properties"
FIGURE_SUFFIX = "_seconds"
FAIL_ON = ("any", "new", "none")


class ReportError(DkcError):
    """A directory that is not a report ``./dkc run`` wrote."""


@dataclass(frozen=True)
class SideReport:
    """One report as the comparison reads it."""

    path: Path
    records: Mapping[str, Record]  # node id -> record
    figures: Mapping[str, Mapping[str, float]]  # node id -> figure name -> value
    environment: Mapping[str, str]


@dataclass(frozen=True)
class Change:
    nodeid: str
    before: str | None  # None: the test is not in that report
    after: str | None

    def kind(self) -> str:
        if self.after is None:
            return "gone"
        if self.before is None:
            return "new failure" if self.after in BAD else "new test"
        if self.after in BAD and self.before not in BAD:
            return "new XPASS" if self.after == "xpassed" else "newly failing"
        if self.before in BAD and self.after not in BAD:
            return "newly passing" if self.after == "passed" else f"no longer failing ({self.after})"
        if self.after == "xfailed":
            return "new xfail"
        return "changed"


@dataclass(frozen=True)
class FigureChange:
    nodeid: str
    name: str
    before: float
    after: float


@dataclass
class Comparison:
    before: SideReport
    after: SideReport
    changes: list[Change] = field(default_factory=list)
    slower: list[FigureChange] = field(default_factory=list)
    margin: float = 0.25

    def newly_bad(self) -> list[Change]:
        return [c for c in self.changes if c.after in BAD and (c.before is None or c.before not in BAD)]


def _junit_figures(path: Path) -> dict[str, dict[str, float]]:
    """node id -> numeric ``*_seconds`` properties, from a JUnit file pytest wrote (classname a.b, name t[p])."""
    if not path.is_file():
        return {}
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as exc:
        raise ReportError(f"{path} is not JUnit XML ({exc}): is the run that wrote it still going?") from exc
    figures: dict[str, dict[str, float]] = {}
    for case in root.iter("testcase"):
        module = case.get("classname") or ""
        parts = module.split(".")
        # pytest writes classname "suites.test_x" (or "suites.test_x.TestClass") and name "test_y[param]".
        path_parts = [p for p in parts if not p[:1].isupper()]
        classes = [p for p in parts if p[:1].isupper()]
        nodeid = "/".join(path_parts) + ".py::" + "::".join([*classes, case.get("name") or ""])
        for prop in case.iter("property"):
            name, value = prop.get("name") or "", prop.get("value") or ""
            if not name.endswith(FIGURE_SUFFIX):
                continue
            try:
                figures.setdefault(nodeid, {})[name] = float(value)
            except ValueError:
                continue
    return figures


def _environment(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    found = {}
    for line in path.read_text(encoding="latin-1").splitlines():
        key, sep, value = line.partition("=")
        if sep and not line.startswith("#"):
            # Java properties escape spaces in keys and non-Latin-1 text as \uXXXX.
            found[key.replace("\\ ", " ")] = value.encode("latin-1").decode("unicode_escape")
    return found


def read_report(path: Path) -> SideReport:
    """The report in ``path``; a directory without the matrix records is one clear error."""
    path = Path(path)
    records_path = path / MATRIX_RECORDS
    if not records_path.is_file():
        what = "does not exist" if not path.exists() else f"has no {MATRIX_RECORDS}"
        raise ReportError(f"{path} {what}: give a report directory that ./dkc run wrote (reports/out)")
    records = {record.nodeid: record for record in read_records(records_path)}
    return SideReport(path, records, _junit_figures(path / JUNIT), _environment(path / ENVIRONMENT))


def compare(before: SideReport, after: SideReport, margin: float = 0.25, floor_seconds: float = 5.0) -> Comparison:
    """What changed: outcomes per test, and figures that grew by more than ``margin`` (a share) and more than
    ``floor_seconds`` (so that 2 s -> 3 s is not reported as 50 % worse)."""
    result = Comparison(before, after, margin=margin)
    for nodeid in sorted(set(before.records) | set(after.records)):
        old, new = before.records.get(nodeid), after.records.get(nodeid)
        old_outcome, new_outcome = (old.outcome if old else None), (new.outcome if new else None)
        if old_outcome != new_outcome:
            result.changes.append(Change(nodeid, old_outcome, new_outcome))
    for nodeid, figures in after.figures.items():
        for name, value in figures.items():
            previous = before.figures.get(nodeid, {}).get(name)
            if previous is not None and value > previous * (1 + margin) and value - previous > floor_seconds:
                result.slower.append(FigureChange(nodeid, name, previous, value))
    return result


def fails_gate(comparison: Comparison, fail_on: str) -> bool:
    """``any``: the newer report has a failure, error or XPASS; ``new``: one the older did not have; ``none``."""
    if fail_on not in FAIL_ON:
        raise ReportError(f"--fail-on {fail_on!r}: choose one of {', '.join(FAIL_ON)}")
    if fail_on == "any":
        return any(record.outcome in BAD for record in comparison.after.records.values())
    return fail_on == "new" and bool(comparison.newly_bad())


def _entries(report: SideReport) -> Iterable[tuple[str, str, str]]:
    return (entry for record in report.records.values() for entry in record.entries())


def _side_by_side(comparison: Comparison) -> list[str]:
    before_columns, before_rows = matrix_cells(_entries(comparison.before))
    after_columns, after_rows = matrix_cells(_entries(comparison.after))
    columns = [*after_columns, *(c for c in before_columns if c not in after_columns)]
    old = {claim: dict(zip(before_columns, texts, strict=True)) for claim, texts in before_rows}
    new = {claim: dict(zip(after_columns, texts, strict=True)) for claim, texts in after_rows}
    claims = sorted(set(old) | set(new), key=claim_number)
    lines = ["| Claim | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for claim in claims:
        cells = []
        for column in columns:
            a, b = old.get(claim, {}).get(column, " ").strip(), new.get(claim, {}).get(column, " ").strip()
            cells.append((b or "·") if a == b else f"**{a or '·'} → {b or '·'}**")
        lines.append(f"| {claim} | " + " | ".join(cells) + " |")
    return lines


def _environment_lines(comparison: Comparison) -> list[str]:
    before, after = comparison.before.environment, comparison.after.environment
    keys = [*after, *(key for key in before if key not in after)]
    if not keys:
        return []
    lines = ["| | before | after |", "|---|---|---|"]
    for key in keys:
        a, b = before.get(key, "?"), after.get(key, "?")
        lines.append(f"| {key} | {a} | {b if a == b else f'**{b}**'} |")
    return [*lines, ""]


def render_comparison(comparison: Comparison) -> str:
    """Markdown: environments, the side-by-side matrix (changed cells in bold, ``before → after``), the changed
    tests grouped by kind, and the figures that got worse."""
    lines = ["# Comparison", "", f"before: `{comparison.before.path}`  ", f"after: `{comparison.after.path}`", "",
             *_environment_lines(comparison), *_side_by_side(comparison), ""]
    by_kind: dict[str, list[Change]] = {}
    for change in comparison.changes:
        by_kind.setdefault(change.kind(), []).append(change)
    order = ["newly failing", "new failure", "new XPASS", "newly passing", "new xfail", "new test", "gone", "changed"]
    for kind in sorted(by_kind, key=lambda k: order.index(k) if k in order else len(order)):
        lines += [f"## {kind} ({len(by_kind[kind])})", ""]
        lines += [f"- `{c.nodeid}`: {c.before or 'absent'} → {c.after or 'absent'}" for c in by_kind[kind]]
        lines.append("")
    if not comparison.changes:
        lines += ["No test changed its outcome.", ""]
    if comparison.slower:
        lines += [f"## figures worse by more than {comparison.margin:.0%} ({len(comparison.slower)})", ""]
        lines += [f"- `{f.nodeid}` {f.name}: {f.before:.1f} → {f.after:.1f}" for f in comparison.slower]
        lines.append("")
    return "\n".join(lines)
