"""Where expensive builds live between runs: outside the checkout, keyed by version and inputs."""

from __future__ import annotations

import hashlib
import os
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
