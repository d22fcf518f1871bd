"""One family of waits: poll or watch until a condition holds, a terminal state is seen, or a deadline.

Every wait has a description; on timeout it says what it waited for and what it saw last.
Clock and sleep are injectable so the logic is testable without waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from common import timings

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The condition did not hold before the deadline."""

    def __init__(self, description: str, timeout: float, last_seen: str) -> None:
        super().__init__(f"timed out after {timeout:.0f}s waiting for {description}; last seen: {last_seen}")
        self.description, self.timeout, self.last_seen = description, timeout, last_seen


class TerminalState(RuntimeError):
    """The awaited object reached a state from which the condition can no longer hold."""


@dataclass
class Observation(Generic[T]):
    """What one look at the world found: whether we are done, a value, and a line for the log."""

    done: bool
    seen: str
    value: T | None = None


def wait_for(
    description: str,
    look: Callable[[], Observation[T]],
    timeout: float,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T | None:
    """Call ``look`` until it reports done; raise ``WaitTimeout`` naming the last thing seen.

    ``look`` may raise ``TerminalState`` to stop early; transient errors from ``look`` are
    recorded as the last thing seen and retried until the deadline.
    """
    with timings.span("wait", description):
        return _poll(description, look, timeout, interval, clock, sleep)


def _error_seen(exc: Exception) -> str:
    """An error a look raised, as the one line a wait reports as what it saw."""
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"


def _poll(description: str, look: Callable[[], Observation[T]], timeout: float, interval: float,
          clock: Callable[[], float], sleep: Callable[[float], None]) -> T | None:
    deadline = clock() + timeout
    last_seen = "nothing yet"
    while True:
        try:
            observation = look()
        except TerminalState:
            raise
        except Exception as exc:  # a transient error is something seen, not a verdict
            observation = Observation(False, _error_seen(exc))
        if observation.done:
            return observation.value
        last_seen = observation.seen
        if clock() >= deadline:
            raise WaitTimeout(description, timeout, last_seen)
        sleep(min(interval, max(0.0, deadline - clock())))


class ConditionBroke(AssertionError):
    """Something that had to stay true for an observation window did not."""


def holds_for(
    description: str,
    look: Callable[[], Observation[T]],
    window: float,
    interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Look for ``window`` seconds; raise ``ConditionBroke`` the first time ``look`` is not done.

    For claims of the form "nothing more happens" (exactly N retries): the window is stated, never implied.
    A look that raises (a request reset on its way) is no verdict, as in ``wait_for``: the window goes on, and it
    ends with a look that answered, taken within three intervals after the window, or ``WaitTimeout`` naming the
    error. Returns the last thing seen.
    """
    deadline = clock() + window
    last_chance = deadline + 3 * interval
    while True:
        try:
            observation = look()
        except (TerminalState, ConditionBroke):
            raise
        except Exception as exc:  # a transient error is something seen, not a verdict
            if clock() >= last_chance:
                raise WaitTimeout(f"a last answer on whether {description} held", window, _error_seen(exc)) from exc
        else:
            if not observation.done:
                raise ConditionBroke(f"{description} stopped holding: {observation.seen}")
            if clock() >= deadline:
                return observation.seen
        sleep(min(interval, max(0.0, deadline - clock())) or interval)
