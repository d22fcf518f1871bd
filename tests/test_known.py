"""The Dagster release line a version-conditioned known defect compares against."""

from __future__ import annotations

from suites.known import release_line


def test_release_line_is_major_and_minor() -> None:
    assert release_line("1.12.22") == (1, 12)
    assert release_line("1.13.27") < (1, 14) and release_line("1.11.16") < (1, 13)
