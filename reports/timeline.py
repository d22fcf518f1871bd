"""The pod timeline as a PNG for the Allure report: which pod was up when, faults, and marked instants.

Drawn on a bare ``Figure`` with the Agg canvas, not pyplot: no global state and no figure manager to leak,
so it is safe from any thread.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from observation.timeline import PodSpan

__all__ = ["MAX_ROWS", "render_png"]

MAX_ROWS = 40
WIDTH_INCHES = 11.0
ROW_INCHES = 0.28
FRAME_INCHES = 2.2  # title, mark labels, axis and legend
DPI = 100
STARTING_ALPHA = 0.3

# Families in the order they are drawn, top to bottom, each with its colour.
FAMILIES: dict[str, str] = {
    "control plane": "#1f77b4",
    "code locations": "#2ca02c",
    "runs and steps": "#ff7f0e",
    "storage": "#8c564b",
    "other": "#7f7f7f",
}
_CONTROL_PLANE = ("webserver", "daemon", "celery worker")
_STORAGE = ("postgresql", "broker")
_RUN_PREFIXES = ("run ", "step ", "external job")


def family_of(component: str) -> str:
    if component in _CONTROL_PLANE:
        return "control plane"
    if component.startswith("code location"):
        return "code locations"
    if component.startswith(_RUN_PREFIXES):
        return "runs and steps"
    if component in _STORAGE:
        return "storage"
    return "other"


def _short(name: str, keep: int = 30) -> str:
    """Keep the end of a long pod name: the hash suffixes tell replicas and replacements apart."""
    return name if len(name) <= keep else f"{name[:10]}…{name[-(keep - 11):]}"


def _visible(spans: Sequence[PodSpan], start: float, end: float) -> list[PodSpan]:
    """Spans overlapping [start, end], grouped by family then component, oldest first."""
    families = list(FAMILIES)
    shown = [s for s in spans if s.created <= end and (s.ended is None or s.ended >= start)]
    return sorted(shown, key=lambda s: (families.index(family_of(s.component)), s.component, s.created))


def _clip(t: float, start: float, end: float) -> float:
    return min(max(t, start), end) - start


def _draw_span(ax: Axes, row: int, span: PodSpan, start: float, end: float) -> None:
    colour = FAMILIES[family_of(span.component)]
    stop = span.ended if span.ended is not None else end
    up_from = span.ready if span.ready is not None and span.ready <= stop else stop
    created, ready, stopped = (_clip(t, start, end) for t in (span.created, up_from, stop))
    if ready > created:
        ax.barh(row, ready - created, left=created, height=0.6, color=colour, alpha=STARTING_ALPHA)
    if stopped > ready:
        ax.barh(row, stopped - ready, left=ready, height=0.6, color=colour)
    if span.end_reason == "deleted" and span.ended is not None:
        ax.plot(stopped, row, marker="x", color="red", markersize=7, markeredgewidth=2)
        ax.annotate("deleted", (stopped, row), xytext=(5, 0), textcoords="offset points", va="center",
                    fontsize=7, color="red")


def _draw_marks(ax: Axes, marks: Sequence[tuple[str, float]], start: float, end: float) -> None:
    on_top = blended_transform_factory(ax.transData, ax.transAxes)  # x in seconds, y at the top edge
    for label, at in sorted(marks, key=lambda mark: mark[1]):
        if not start <= at <= end:
            continue
        ax.axvline(at - start, color="black", linestyle="--", linewidth=1)
        ax.text(at - start, 1.01, label, transform=on_top, rotation=30, ha="left", va="bottom", fontsize=7)


def _legend(fig: Figure, spans: Sequence[PodSpan], marks: bool) -> None:
    present = [f for f in FAMILIES if any(family_of(s.component) == f for s in spans)]
    handles: list[Patch | Line2D] = [Patch(color=FAMILIES[f], label=f) for f in present]
    handles.append(Patch(color="grey", alpha=STARTING_ALPHA, label="starting (not Ready)"))
    handles.append(Patch(color="grey", label="Ready"))
    if any(s.end_reason == "deleted" for s in spans):
        handles.append(Line2D([], [], color="red", marker="x", linestyle="", markeredgewidth=2, label="deleted"))
    if marks:
        handles.append(Line2D([], [], color="black", linestyle="--", label="mark"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)


def render_png(spans: list[PodSpan], marks: list[tuple[str, float]], title: str, start: float, end: float) -> bytes:
    """Draw one row per pod ("<component> · <pod>") over seconds since ``start``; return the PNG bytes."""
    end = max(end, start + 1)  # a zero-length recording still gets an axis
    visible = _visible(spans, start, end)
    rows, hidden = visible[:MAX_ROWS], max(0, len(visible) - MAX_ROWS)
    height = FRAME_INCHES + ROW_INCHES * max(len(rows), 3)
    fig = Figure(figsize=(WIDTH_INCHES, height), dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for row, span in enumerate(rows):
        _draw_span(ax, row, span, start, end)
    if not rows:
        ax.text(0.5, 0.5, "no pods seen", transform=ax.transAxes, ha="center", va="center", color="grey")
    drawn_marks = [m for m in marks if start <= m[1] <= end]
    _draw_marks(ax, drawn_marks, start, end)
    ax.set_yticks(range(len(rows)), [f"{s.component} · {_short(s.name)}" for s in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.5 if rows else 1, -0.5 if rows else 0)  # first row at the top
    ax.set_xlim(0, end - start)
    ax.set_xlabel("seconds since the recording started", fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    _draw_family_breaks(ax, rows)
    # A figure title, not an axes title: the layout then keeps it clear of the mark labels above the axes.
    fig.suptitle(title + (f" (+{hidden} more pods)" if hidden else ""), fontsize=10)
    _legend(fig, rows, bool(drawn_marks))
    buffer = io.BytesIO()
    FigureCanvasAgg(fig).print_png(buffer)
    fig.clear()
    return buffer.getvalue()


def _draw_family_breaks(ax: Axes, rows: Sequence[PodSpan]) -> None:
    """A thin line where one family of rows ends and the next begins."""
    for row in range(1, len(rows)):
        if family_of(rows[row].component) != family_of(rows[row - 1].component):
            ax.axhline(row - 0.5, color="grey", linewidth=0.5)
