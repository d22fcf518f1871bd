"""Self-tests of the layout: data flows one way between the rooms, and no module grows past the size limit."""

from __future__ import annotations

from tests import layout


def test_every_package_is_a_known_room() -> None:
    assert set(layout.packages()) == set(layout.ROOMS) | set(layout.TOP)


def test_each_room_imports_only_the_rooms_below_it() -> None:
    assert layout.upward_edges(layout.graph()) == []


def test_the_sample_code_imports_nothing_of_ours() -> None:
    assert dict(layout.graph().get("workloads", {})) == {}


def test_no_module_is_over_the_size_limit() -> None:
    assert layout.oversized() == []
