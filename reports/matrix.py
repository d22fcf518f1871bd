"""The conformance matrix: which claims hold on which combination, as Markdown.

Input is ``(claim, combination, outcome)`` entries, from the records ``reports.plugin.MatrixRecorder``
writes (JUnit XML cannot say which claim a test checks: markers are not in it).
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from deploy.settings import COMBINATIONS
from reports.claims import CLAIMS, claim_number
from reports.plugin import NO_COMBINATION, read_records

__all__ = ["LEGEND", "cell_text", "entries_from", "matrix_cells", "render_matrix", "render_matrix_html",
           "write_matrix"]

Entry = tuple[str, str, str]  # (claim, combination, outcome)
SKIPPED = "\u2013 skip"  # an en dash: "not run" reads quieter than a hyphen

LEGEND = (
    "✓ pass: every test passed · ✗ fail: a test failed or errored · ! xpass: a known issue no longer "
    "reproduces (update the xfail) · known issue (xfail): fails as documented upstream · " + SKIPPED + ": not run. "
    "With several tests in a cell: `✓ 3` is 3 passed; `✗ fail 1/3` is 1 of 3."
)


def _counted(label: str, count: int, total: int) -> str:
    return label if total == 1 else f"{label} {count}/{total}"


def cell_text(outcomes: Sequence[str]) -> str:
    """One cell: the worst outcome wins (fail, then xpass, then known issue), then pass, then skip."""
    if not outcomes:
        return " "
    counts, total = Counter(outcomes), len(outcomes)
    bad = counts["failed"] + counts["error"]
    if bad:
        return _counted("✗ fail", bad, total)
    if counts["xpassed"]:
        return _counted("! xpass", counts["xpassed"], total)
    if counts["xfailed"]:
        return _counted("known issue (xfail)", counts["xfailed"], total)
    if counts["passed"]:
        text = "✓ pass" if total == 1 else f"✓ {counts['passed']}"
        return text + (f" ({counts['skipped']} skip)" if counts["skipped"] else "")
    return _counted(SKIPPED, counts["skipped"], total)


def _columns(combinations: Iterable[str]) -> list[str]:
    """Every known combination, always (an empty column shows it was not run), then any other seen."""
    seen = set(combinations)
    others = sorted(seen - set(COMBINATIONS) - {NO_COMBINATION})
    return [*COMBINATIONS, *others, *([NO_COMBINATION] if NO_COMBINATION in seen else [])]


def matrix_cells(entries: Iterable[Entry]) -> tuple[list[str], list[tuple[str, list[str]]]]:
    """The columns (combinations) and, per claim present in numeric order, its cells' texts."""
    cells: defaultdict[str, defaultdict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for claim, combination, outcome in entries:
        cells[claim][combination].append(outcome)
    columns = _columns(combination for row in cells.values() for combination in row)
    rows = [(claim, [cell_text(cells[claim].get(column, [])) for column in columns])
            for claim in sorted(cells, key=claim_number)]
    return columns, rows


def render_matrix(entries: Iterable[Entry], title: str = "Conformance matrix") -> str:
    """Markdown: one row per claim present (numeric order), one column per combination."""
    columns, rows = matrix_cells(entries)
    lines = [f"# {title}", "", "| Claim | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for claim, texts in rows:
        name = f"**{claim}** {CLAIMS.get(claim, '')}".strip().replace("|", "\\|")
        lines.append(f"| {name} | " + " | ".join(texts) + " |")
    if not rows:
        lines.append("| (no test with a claim marker ran) |" + " |" * len(columns))
    return "\n".join([*lines, "", LEGEND, ""])


_CELL = "border:1px solid #d0d0d0;padding:4px 10px;text-align:left"
# Background by what the cell says first (see cell_text): fail, xpass, known issue, pass, skip.
_COLOURS = (("✗", "#f8d7da"), ("!", "#ffe5b4"), ("known", "#fff3cd"), ("✓", "#d4edda"), (SKIPPED, "#eeeeee"))


def _cell_html(text: str) -> str:
    colour = next((colour for start, colour in _COLOURS if text.startswith(start)), "#ffffff")
    return f'<td style="{_CELL};background:{colour}">{html.escape(text)}</td>'


def render_matrix_html(entries: Iterable[Entry]) -> str:
    """The same matrix as an HTML table (inline styles: the report shows it as a test's description)."""
    columns, rows = matrix_cells(entries)
    head = "".join(f'<th style="{_CELL};background:#f4f4f4">{html.escape(column)}</th>'
                   for column in ["Claim", *columns])
    body = "".join(
        f'<tr><td style="{_CELL}"><b>{claim}</b> {html.escape(CLAIMS.get(claim, ""))}</td>'
        + "".join(_cell_html(text) for text in texts) + "</tr>"
        for claim, texts in rows) or f"<tr><td colspan={len(columns) + 1}>no test with a claim marker ran</td></tr>"
    return (f'<table style="border-collapse:collapse"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
            f"<p>{html.escape(LEGEND)}</p>")


def write_matrix(entries: Iterable[Entry], path: Path) -> Path:
    """Write the matrix as Markdown to ``path``; returns it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_matrix(entries), encoding="utf-8")
    return path


def entries_from(records_path: Path) -> list[Entry]:
    """The matrix entries in a JSON-lines file the plugin wrote."""
    return [entry for record in read_records(records_path) for entry in record.entries()]
