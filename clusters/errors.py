"""Errors of the cluster providers."""

from __future__ import annotations

from common.errors import BuildError, DkcError, PreflightError

__all__ = ["BuildError", "ClusterError", "PreflightError"]


class ClusterError(DkcError):
    """A cluster could not be provisioned, reached or removed."""
