"""A bounded request loop against a service while a fault is applied: how often it answered, and the
longest time it did not."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise


@dataclass
class Answers:
    """What the loop saw: (monotonic time, error or None) per request."""

    results: list[tuple[float, str | None]] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        return [error for _, error in self.results if error]

    @property
    def longest_silence(self) -> float:
        """The longest span between two answered requests (or from the first request to an answer)."""
        answered = [at for at, error in self.results if error is None]
        if not answered:
            return self.results[-1][0] - self.results[0][0] if self.results else 0.0
        marks = [self.results[0][0], *answered, self.results[-1][0]]
        return max(b - a for a, b in pairwise(marks))


class RequestLoop:
    """Calls ``request`` back to back in a thread until stopped; never more than ``max_requests``."""

    def __init__(self, request: Callable[[], object], interval: float = 0.2, max_requests: int = 5000) -> None:
        self._request, self._interval, self._max = request, interval, max_requests
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="request-loop", daemon=True)
        self.answers = Answers()

    def _loop(self) -> None:
        while not self._stop.is_set() and len(self.answers.results) < self._max:
            try:
                self._request()
                error = None
            except Exception as exc:  # every failure is a data point, not a reason to stop
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            self.answers.results.append((time.monotonic(), error))
            self._stop.wait(self._interval)

    def __enter__(self) -> RequestLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
