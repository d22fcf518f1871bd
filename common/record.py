"""What a long step did and what it showed, for whoever reports it.

The rooms below the reports (clusters, deploy, the Dagster client, chaos) call ``step`` and ``attach_*``
here and never import a report format; the reports install a ``Recorder`` (Allure's, with redaction) when
a test session starts. Without one, steps and attachments do nothing (e.g. ``./dkc up``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol


class Recorder(Protocol):
    def step(self, title: str) -> AbstractContextManager[Any]: ...

    def attach_text(self, name: str, text: str) -> None: ...

    def attach_json(self, name: str, data: Any) -> None: ...

    def attach_file(self, name: str, path: Path) -> None: ...


class Silent:
    """Records nothing: the recorder until the reports install theirs."""

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        yield

    def attach_text(self, name: str, text: str) -> None:
        pass

    def attach_json(self, name: str, data: Any) -> None:
        pass

    def attach_file(self, name: str, path: Path) -> None:
        pass


_recorder: Recorder = Silent()


def install(recorder: Recorder) -> Recorder:
    """Make ``recorder`` the one every step goes to; returns the one it replaces."""
    global _recorder
    previous, _recorder = _recorder, recorder
    return previous


def step(title: str) -> AbstractContextManager[Any]:
    return _recorder.step(title)


def attach_text(name: str, text: str) -> None:
    _recorder.attach_text(name, text)


def attach_json(name: str, data: Any) -> None:
    _recorder.attach_json(name, data)


def attach_file(name: str, path: Path) -> None:
    _recorder.attach_file(name, path)
