"""Errors a user can hit: each carries one line saying what is wrong and what to do."""

from __future__ import annotations


class ClusterError(Exception):
    """A cluster could not be provisioned, reached or removed.

    The message is one line: what is wrong, then what to do about it.
    """


class PreflightError(ClusterError):
    """The machine lacks something the provider needs (root, a tool, a free name)."""


class BuildError(ClusterError):
    """A component could not be built from its sources."""
