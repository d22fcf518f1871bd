"""One cluster per test session, shared by every pytest-xdist worker, deleted once at the end.

Workers acquire the cluster under a file lock (the first creates it, the rest reuse it). Whoever
created it leaves a marker in the run directory; the controlling process deletes the cluster at
session end, after every worker is done, unless ``--keep``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from clusters import ClusterInfo, Provider, ProviderOptions, get_provider
from clusters.cache import cache_root

RUN_DIR_ENV = "DKC_RUN_DIR"


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _marker(run_dir: Path, kind: str, options: ProviderOptions) -> Path:
    return run_dir / f"created-{kind}-{options.name}"


def acquire(kind: str, options: ProviderOptions, run_dir: Path | None) -> tuple[Provider, ClusterInfo]:
    """A ready cluster and its provider; records in ``run_dir`` whether this session created it."""
    provider = get_provider(kind, options)
    with file_lock(cache_root() / "locks" / f"{kind}-{options.name}.lock"):
        existed = provider.status().healthy
        info = provider.create()
    if not existed and info.created_by_us and run_dir is not None:
        _marker(run_dir, kind, options).touch()
    return provider, info


def release(kind: str, options: ProviderOptions, run_dir: Path) -> None:
    """Delete the cluster if this session created it and ``--keep`` was not given."""
    marker = _marker(run_dir, kind, options)
    if marker.exists() and not options.keep:
        get_provider(kind, options).delete()
    marker.unlink(missing_ok=True)


def run_dir_from_env() -> Path | None:
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None
