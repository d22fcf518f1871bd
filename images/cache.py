"""Where expensive builds live between runs: outside the checkout, keyed by version and inputs."""

from __future__ import annotations

import fcntl
import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def cache_root() -> Path:
    """``$DKC_CACHE_DIR`` or ``~/.cache/dagster-k8s-conformance`` (shared by every clone)."""
    configured = os.environ.get("DKC_CACHE_DIR")
    if configured:
        return Path(configured)
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "dagster-k8s-conformance"


def inputs_key(*parts: str | bytes) -> str:
    """A short digest of everything that decides a build's output."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()[:16]


@contextmanager
def lock(name: str) -> Iterator[None]:
    """Hold an exclusive lock named ``name`` under the cache, so two processes (e.g. test workers)
    never build the same entry at once; the second waits, then finds the first one's result.

    The lock is an ``flock`` on a file, released by the kernel even if the holder is killed.
    """
    from common.progress import say

    directory = cache_root() / "locks"
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"{name}.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say(f"  waiting for another process building {name} ...")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
