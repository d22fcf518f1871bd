"""Self-tests of the request loop used by C4: failures are counted and the longest silence is measured."""

from __future__ import annotations

from chaos.load import Answers


def test_longest_silence_spans_failed_requests() -> None:
    answers = Answers([(0.0, None), (1.0, "down"), (2.0, "down"), (3.5, None), (4.0, None)])
    assert answers.failed == ["down", "down"]
    assert answers.longest_silence == 3.5


def test_a_loop_that_never_got_an_answer_was_silent_throughout() -> None:
    assert Answers([(0.0, "x"), (2.0, "y")]).longest_silence == 2.0
    assert Answers([]).longest_silence == 0.0
