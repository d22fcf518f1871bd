"""The root of every error a user can hit: each carries one line saying what is wrong and what to do.

Each room names its own errors below ``DkcError`` (ClusterError, DeployError, DagsterApiError, ...), so that
``except DkcError`` means "any error the suite explains", and ``except ClusterError`` only the cluster's.
"""

from __future__ import annotations


class DkcError(Exception):
    """Something the user can fix; the message is one line: what is wrong, then what to do about it."""


class PreflightError(DkcError):
    """The machine lacks something a step needs (root, a tool, a free name, a package mirror)."""


class BuildError(DkcError):
    """A component (a binary, an image) could not be built from its sources."""
