"""The runs this process launched, in order: a test's evidence lists the runs launched while it ran.

Filled through the Dagster client's ``on_launch`` subscription (``subscribe``, once per test session).
"""

from __future__ import annotations

from dagster_api import on_launch


class LaunchLog:
    def __init__(self) -> None:
        self.run_ids: list[str] = []
        self._unsubscribe = None

    def __call__(self, run_id: str) -> None:
        self.run_ids.append(run_id)

    def subscribe(self) -> None:
        if self._unsubscribe is None:
            self._unsubscribe = on_launch(self)

    def mark(self) -> int:
        """Where the log is now; ``since(mark)`` are the runs launched after it."""
        return len(self.run_ids)

    def since(self, mark: int) -> list[str]:
        return self.run_ids[mark:]


LAUNCHES = LaunchLog()
