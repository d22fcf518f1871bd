"""Errors of deploying, finding and checking a Dagster deployment."""

from __future__ import annotations

from common.errors import DkcError


class DeployError(DkcError):
    """The deployment did not become ready; the message names the component, what was seen and its last logs."""
