"""The conformance and chaos suites: one module per group of claims."""

from __future__ import annotations

import pytest

from deploy.deployment import Deployment


def only(dagster: Deployment, *combinations: str) -> None:
    """Skip, saying why, when the claim is not about this deployment's combination."""
    if dagster.settings.combination not in combinations:
        pytest.skip(f"claim is about {' / '.join(combinations)}, not {dagster.settings.combination}")
