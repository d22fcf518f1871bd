"""Which xdist worker runs which test: a combination's tests all on one (its deployment is made once, by that
worker), every other test wherever a worker is free.

xdist's own ``loadgroup`` finds groups in a suffix it appends to test ids (``@<group>``); pytest 9.2 keeps its ids
apart from the attribute xdist writes, so the suffix is lost and every test is scheduled on its own
(pytest-dev/pytest-xdist#1386). The group is therefore read from the test's id itself: its combination parameter.
"""

from __future__ import annotations

import pytest
from xdist.remote import Producer
from xdist.scheduler import LoadScopeScheduling

from reports.plugin import NO_COMBINATION, combination_of, without_group


def scope_of(nodeid: str) -> str:
    """The combination a test runs on (its group), else the test alone."""
    combination = combination_of(without_group(nodeid), {})
    return combination if combination != NO_COMBINATION else nodeid


class CombinationScheduling(LoadScopeScheduling):
    """xdist's scope scheduling, a scope being a combination (or one test that has none)."""

    def __init__(self, config: pytest.Config, log: Producer | None = None) -> None:
        super().__init__(config, log)
        self.log = log.combinationsched if log is not None else Producer("combinationsched")

    def _split_scope(self, nodeid: str) -> str:
        return scope_of(nodeid)
