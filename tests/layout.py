"""The rooms of the project and who imports whom: ``.venv/bin/python -m tests.layout`` prints the import graph
between top-level packages (each edge with its number of import statements), then any edge that goes up or
round, and the modules over the size limit. The self-test tests/test_layout.py keeps it clean.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Low to high: a room imports only rooms before it. workloads is the sample code that runs inside the images;
# it imports nothing of ours (images reads its files by path).
ROOMS = ("workloads", "common", "images", "dagster_api", "observation", "clusters", "deploy", "chaos", "reports",
         "cli", "suites")
TOP = ("tests", "bench")  # may import any room
MAX_LINES = 400


def packages() -> list[str]:
    return sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").exists())


def modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def imported_packages(path: Path, own: str, known: set[str]) -> list[tuple[str, int]]:
    """(top-level package, line) of every import of one of ``known`` in ``path`` other than ``own``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(name.split(".")[0], node.lineno) for name in names
                  if name.split(".")[0] in known and name.split(".")[0] != own]
    return found


def graph() -> dict[str, dict[str, list[str]]]:
    """package -> imported package -> ``module:line`` of each import."""
    known = set(packages())
    edges: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for package in known:
        for path in modules(package):
            for target, line in imported_packages(path, package, known):
                edges[package][target].append(f"{path.relative_to(ROOT)}:{line}")
    return edges


def upward_edges(edges: dict[str, dict[str, list[str]]]) -> list[str]:
    """Every import from a room into a room at its level or above it (a cycle always contains one)."""
    rank = {room: index for index, room in enumerate(ROOMS)}
    wrong = []
    for source, targets in sorted(edges.items()):
        if source in TOP:
            continue
        for target, where in sorted(targets.items()):
            if source not in rank or target not in rank:
                wrong.append(f"{source} -> {target}: not a known room (add it to ROOMS in tests/layout.py)")
            elif rank[target] >= rank[source] or target in TOP:
                wrong.append(f"{source} -> {target} goes up: {', '.join(where)}")
    return wrong


def oversized(limit: int = MAX_LINES) -> list[str]:
    """Modules longer than ``limit`` lines."""
    found = []
    for package in packages():
        for path in modules(package):
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > limit:
                found.append(f"{path.relative_to(ROOT)}: {lines} lines")
    return found


def main() -> int:
    edges = graph()
    for source in [*ROOMS, *TOP]:
        targets = edges.get(source, {})
        order = [*ROOMS, *TOP]
        line = ", ".join(f"{target} ({len(targets[target])})" for target in sorted(targets, key=order.index)
                         if target in order) or "nothing"
        print(f"{source:12} -> {line}")
    problems = upward_edges(edges) + oversized()
    for problem in problems:
        print(f"PROBLEM {problem}")
    if not upward_edges(edges):
        print("no cycle: every room imports only the rooms before it")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
