"""Where the matrix spends its time: runs a pytest selection (default: every suite on every combination, as
``./dkc run`` does) on a warm cluster and prints the wall time, the ten slowest tests, the time per phase, each
xdist worker's busy time (the longest is the critical path) and the share of the CPUs that was busy.

    .venv/bin/python -m bench.suite                         # the full matrix
    .venv/bin/python -m bench.suite -- -m smoke             # a selection
    .venv/bin/python -m bench.suite -- -m ha --combination k8s-job -n 2 --dist loadgroup

Phases come from the suite's own progress lines and waits (``common.timings``): deploy (bring-up, reconfigure,
teardown), launch -> STARTED, run -> end, fault -> recovery, evidence, other waits; a wait inside a deploy phase
counts as deploy. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from bench.figures import print_figures
from common.timings import ENV

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEPLOY = re.compile(r"^(Deploying|Creating namespace|Starting the webserver|Waiting for|Rolling the control plane|"
                    r"Deleting namespace|Building|Loading|Installing|Upgrading|Uninstalling|Clearing)")
STARTED = re.compile(r"to reach (STARTED|STARTING)|to start|to hold|to be running", re.IGNORECASE)
ENDED = re.compile(r"to reach .*(SUCCESS|FAILURE|CANCELED)|to end|nothing of run", re.IGNORECASE)
RECOVERY = re.compile(r"recover|back|ready|heartbeat|answer|to load|to roll out|gone", re.IGNORECASE)


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs since boot, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def category(kind: str, title: str) -> str:
    if kind == "evidence":
        return "evidence"
    if kind == "phase":
        return "deploy" if DEPLOY.search(title) else "other phases"
    for name, pattern in (("launch -> STARTED", STARTED), ("run -> end", ENDED), ("fault -> recovery", RECOVERY)):
        if pattern.search(title):
            return name
    return "other waits"


def union_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    total, end = 0.0, float("-inf")
    for start, stop in sorted(intervals):
        if stop > end:
            total += stop - max(start, end)
            end = stop
    return total


def minus(interval: tuple[float, float], cover: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """What of ``interval`` lies outside every interval of ``cover`` (sorted)."""
    pieces, (start, stop) = [], interval
    for begin, end in cover:
        if end <= start or begin >= stop:
            continue
        if begin > start:
            pieces.append((start, begin))
        start = max(start, end)
    if start < stop:
        pieces.append((start, stop))
    return pieces


def phase_seconds(spans: list[dict]) -> dict[str, float]:
    """Seconds per category, per worker without double counting: deploy first, then each other category outside it."""
    by_worker: defaultdict[str, list[dict]] = defaultdict(list)
    for span in spans:
        by_worker[span["worker"]].append(span)
    totals: defaultdict[str, float] = defaultdict(float)
    for worker_spans in by_worker.values():
        deploy = sorted((s["start"], s["end"]) for s in worker_spans if category(s["kind"], s["title"]) == "deploy")
        totals["deploy"] += union_seconds(deploy)
        rest: defaultdict[str, list[tuple[float, float]]] = defaultdict(list)
        for s in worker_spans:
            name = category(s["kind"], s["title"])
            if name != "deploy":
                rest[name] += minus((s["start"], s["end"]), deploy)
        for name, intervals in rest.items():
            totals[name] += union_seconds(intervals)
    return dict(totals)


def junit_tests(path: Path) -> list[tuple[str, float, str]]:
    """(test, seconds, outcome) from pytest's JUnit file."""
    if not path.is_file():
        return []
    found = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        outcome = next((child.tag for child in case if child.tag in ("failure", "error", "skipped")), "passed")
        found.append((f"{case.get('classname')}::{case.get('name')}", float(case.get("time") or 0), outcome))
    return found


def read_spans(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run(pytest_args: list[str], workdir: Path) -> tuple[int, float, float, list[dict], list[tuple[str, float, str]]]:
    junit, spans = workdir / "junit.xml", workdir / "timings.jsonl"
    argv = [sys.executable, "-m", "pytest", *(pytest_args or ["suites"]), f"--junitxml={junit}", "-p", "no:randomly"]
    print("$ " + " ".join(argv[1:]), file=sys.stderr, flush=True)
    busy0, total0 = cpu_times()
    started = time.monotonic()
    status = subprocess.call(argv, cwd=PROJECT_ROOT, env={**os.environ, ENV: str(spans)})
    wall = time.monotonic() - started
    busy1, total1 = cpu_times()
    share = (busy1 - busy0) / (total1 - total0) if total1 > total0 else 0.0
    return status, wall, share, read_spans(spans), junit_tests(junit)


def figures_of(status: int, wall: float, share: float, spans: list[dict],
               tests: list[tuple[str, float, str]]) -> list[tuple[str, str]]:
    outcomes: defaultdict[str, int] = defaultdict(int)
    for _, _, outcome in tests:
        outcomes[outcome] += 1
    figures = [("pytest exit code", str(status)), ("wall time", f"{wall:.0f} s ({wall / 60:.1f} min)"),
               ("tests", ", ".join(f"{count} {name}" for name, count in sorted(outcomes.items())) or "none"),
               ("CPU busy share", f"{share:.0%} of {os.cpu_count()} CPUs")]
    for name, seconds in sorted(phase_seconds(spans).items(), key=lambda item: -item[1]):
        figures.append((f"phase: {name}", f"{seconds:.0f} s ({seconds / wall:.0%} of wall)" if wall else "0 s"))
    workers: defaultdict[str, list[tuple[float, float]]] = defaultdict(list)
    for span in spans:
        workers[span["worker"]].append((span["start"], span["end"]))
    for worker, intervals in sorted(workers.items()):
        figures.append((f"worker {worker}: inside phases and waits", f"{union_seconds(intervals):.0f} s"))
    for index, (test, seconds, outcome) in enumerate(sorted(tests, key=lambda t: -t[1])[:10], start=1):
        figures.append((f"slowest {index:2d}", f"{seconds:6.1f} s  {outcome:7s} {test}"))
    return figures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep-files", type=Path, help="keep the JUnit file and the timings here")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER, help="pytest arguments after --")
    args = parser.parse_args(argv)
    pytest_args = [a for a in args.pytest_args if a != "--"]
    with tempfile.TemporaryDirectory(prefix="dkc-bench-") as scratch:
        workdir = args.keep_files or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        status, wall, share, spans, tests = run(pytest_args, workdir)
    print_figures(figures_of(status, wall, share, spans, tests))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
