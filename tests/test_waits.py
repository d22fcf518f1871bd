"""Self-tests: waits stop when done, stop early on terminal states, and say what they saw last."""

from __future__ import annotations

import pytest

from common.waits import ConditionBroke, Observation, TerminalState, WaitTimeout, holds_for, wait_for
from tests.fakes import FakeClock


def test_returns_the_value_once_done() -> None:
    clock = FakeClock()
    looks = iter([Observation(False, "pending"), Observation(True, "ready", value=42)])
    assert wait_for("thing", lambda: next(looks), timeout=10, clock=clock, sleep=clock.sleep) == 42


def test_timeout_names_what_was_awaited_and_last_seen() -> None:
    clock = FakeClock()
    with pytest.raises(WaitTimeout, match=r"waiting for pod x to run; last seen: Pending: ErrImageNeverPull"):
        wait_for("pod x to run", lambda: Observation(False, "Pending: ErrImageNeverPull"), timeout=5,
                 clock=clock, sleep=clock.sleep)
    assert clock.now == pytest.approx(5)


def test_terminal_state_stops_early() -> None:
    clock = FakeClock()

    def look() -> Observation[None]:
        raise TerminalState("kube-apiserver exited")

    with pytest.raises(TerminalState):
        wait_for("apiserver", look, timeout=60, clock=clock, sleep=clock.sleep)
    assert clock.now == 0


def test_transient_errors_are_retried_and_reported() -> None:
    clock = FakeClock()

    def look() -> Observation[None]:
        raise ConnectionRefusedError("connection refused")

    with pytest.raises(WaitTimeout, match="ConnectionRefusedError: connection refused"):
        wait_for("apiserver", look, timeout=3, clock=clock, sleep=clock.sleep)


def test_holds_for_watches_the_whole_window_and_names_the_break() -> None:
    now = [0.0]

    def advance(seconds: float) -> None:
        now[0] += seconds

    seen = holds_for("two runs", lambda: Observation(True, "2 runs"), 10, 2, clock=lambda: now[0], sleep=advance)
    assert seen == "2 runs" and now[0] == 10
    counts = iter([2, 2, 3])
    with pytest.raises(ConditionBroke, match="two runs stopped holding: 3 runs"):
        holds_for("two runs", lambda: (lambda c: Observation(c == 2, f"{c} runs"))(next(counts)), 10, 2,
                  clock=lambda: now[0], sleep=advance)


def test_holds_for_looks_again_after_an_error_and_ends_on_an_answer() -> None:
    clock = FakeClock()
    looks = iter([Observation(True, "2 runs"), ConnectionResetError("connection reset by peer"),
                  *[Observation(True, "2 runs")] * 10])

    def look() -> Observation[None]:
        answer = next(looks)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert holds_for("two runs", look, 10, 2, clock=clock, sleep=clock.sleep) == "2 runs"
    assert clock.now == pytest.approx(10)


def test_holds_for_that_never_gets_an_answer_at_its_end_says_why() -> None:
    clock = FakeClock()

    def look() -> Observation[None]:
        if clock.now < 4:
            return Observation(True, "2 runs")
        raise ConnectionResetError("connection reset by peer")

    with pytest.raises(WaitTimeout, match=r"whether two runs held.*ConnectionResetError: connection reset by peer"):
        holds_for("two runs", look, 10, 2, clock=clock, sleep=clock.sleep)
    assert clock.now == pytest.approx(16)
