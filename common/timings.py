"""Where a test session spends its time, for bench/suite.py: off unless ``DKC_TIMINGS`` names a file.

Each phase (``common.progress.phase``), wait (``common.waits.wait_for``) and evidence collection appends one JSON line:
kind, title, start and end (epoch seconds), the test running it (``PYTEST_CURRENT_TEST``) and the xdist worker.
Lines are appended with one write each, so pytest-xdist workers can share the file.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["ENV", "span"]

ENV = "DKC_TIMINGS"


def _write(kind: str, title: str, start: float, end: float) -> None:
    path = os.environ.get(ENV)
    if not path:
        return
    line = json.dumps({"kind": kind, "title": title, "start": round(start, 3), "end": round(end, 3),
                       "test": os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0],
                       "worker": os.environ.get("PYTEST_XDIST_WORKER", "main")}, ensure_ascii=False)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")


@contextmanager
def span(kind: str, title: str) -> Iterator[None]:
    """Time the block (also when it raises) as one line of ``kind``: phase, wait or evidence."""
    if not os.environ.get(ENV):
        yield
        return
    start = time.time()
    try:
        yield
    finally:
        _write(kind, title, start, time.time())
