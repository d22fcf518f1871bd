"""The root of every error a user can hit: each carries one line saying what is wrong and what to do.

Each room names its own errors below ``DkcError`` (ClusterError, DeployError, DagsterApiError, ...), so that
``except DkcError`` means "any error the suite explains", and ``except ClusterError`` only the cluster's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class DkcError(Exception):
    """Something the user can fix; the message is one line: what is wrong, then what to do about it."""


class PreflightError(DkcError):
    """The machine lacks something a step needs (root, a tool, a free name, a package mirror)."""


class BuildError(DkcError):
    """A component (a binary, an image) could not be built from its sources."""


def clean_up_after(failure: BaseException, cleanup: Callable[[], object], what: str) -> None:
    """Run ``cleanup`` after ``failure``; if the cleanup fails too, ``failure`` stays the error the caller raises
    (it says what went wrong first) and carries a note, also printed, naming the cleanup's own error."""
    try:
        cleanup()
    except Exception as exc:
        note = f"{what} failed too: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        print(f"✗ {note}", file=sys.stderr, flush=True)
        if hasattr(failure, "add_note"):  # Python >= 3.11
            failure.add_note(note)
