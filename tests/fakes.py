"""Fakes shared by the self-tests."""

from __future__ import annotations


class FakeClock:
    """A monotonic clock for the waits: ``sleep`` moves it on at once (by at least a millisecond, so a wait
    polling with no interval still reaches its deadline)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.001)
