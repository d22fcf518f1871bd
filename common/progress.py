"""Start and end lines for long steps, so a user always sees what is going on.

Each phase prints ``• <title> ...`` when it begins and ``✓ <title> (<seconds>)`` or
``✗ <title>: <reason>`` when it ends. Output goes to stderr so stdout stays parseable.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from common import record, timings

SPEAKER_ENV = "DKC_SPEAKER"


def say(message: str) -> None:
    """One line on stderr; from a process beside others (a pytest-xdist worker, the image build dkc starts beside
    pytest) it names that process, whose lines interleave with the others'."""
    beside = os.environ.get(SPEAKER_ENV) or os.environ.get("PYTEST_XDIST_WORKER")
    print(f"[{beside}] {message}" if beside else message, file=sys.stderr, flush=True)


@contextmanager
def phase(title: str) -> Iterator[None]:
    """Print a start line, then a ✓ line with the duration or a ✗ line with the error; inside a test it is
    also a step of the report (deploy phases show in the report of the test whose fixture deployed)."""
    say(f"• {title} ...")
    started = time.monotonic()
    try:
        with record.step(title), timings.span("phase", title):
            yield
    except BaseException as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        say(f"✗ {title}: {reason}")
        raise
    say(f"✓ {title} ({time.monotonic() - started:.1f}s)")
