"""Self-tests see dkc's output as a user of one process does: without the prefix a pytest-xdist worker's lines get."""

from __future__ import annotations

import pytest

from common.progress import SPEAKER_ENV


@pytest.fixture(autouse=True)
def _one_process_speaking(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (SPEAKER_ENV, "PYTEST_XDIST_WORKER"):
        monkeypatch.delenv(name, raising=False)
