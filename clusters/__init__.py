"""Cluster providers: ``local`` (upstream binaries on containerd), ``kind`` and ``existing``."""

from __future__ import annotations

from clusters.errors import ClusterError, PreflightError
from clusters.provider import PROVIDERS, ClusterInfo, ClusterStatus, Provider, ProviderOptions

__all__ = [
    "PROVIDERS", "ClusterError", "ClusterInfo", "ClusterStatus", "PreflightError", "Provider", "ProviderOptions",
    "get_provider",
]


def get_provider(kind: str, options: ProviderOptions) -> Provider:
    """The provider called ``kind``; an unknown name is a one-line error listing the known ones."""
    if kind == "local":
        from clusters.local import LocalProvider

        return LocalProvider(options)
    if kind == "kind":
        from clusters.kind import KindProvider

        return KindProvider(options)
    if kind == "existing":
        from clusters.existing import ExistingProvider

        return ExistingProvider(options)
    raise ClusterError(f"unknown cluster provider {kind!r}: choose one of {', '.join(PROVIDERS)}")
