"""Instance settings a claim needs: ours get them for the test (and back afterwards), someone else's must have them."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import pytest

from deploy.bringup import reconfigured
from deploy.deployment import Deployment


def instance_with(dagster: Deployment, **wanted: Any) -> AbstractContextManager[Deployment]:
    """The deployment with the instance settings ``wanted`` (DeploymentSettings fields): as it is when it has them;
    ours reconfigured for the test otherwise; someone else's skipped, naming the setting (never reconfigured)."""
    current = {name: getattr(dagster.settings, name) for name in wanted}
    if current == wanted:
        return nullcontext(dagster)
    if dagster.settings.owned:
        return reconfigured(dagster, **wanted)
    differing = ", ".join(f"{name} is {current[name]}, the claim needs {value}" for name, value in wanted.items()
                          if current[name] != value)
    pytest.skip(f"the instance in {dagster.namespace} does not have the settings this claim needs ({differing}); "
                f"the suite never reconfigures a deployment it did not make")


def require_run_monitoring(dagster: Deployment, because: str) -> None:
    """Skip, saying why, when the instance does not monitor runs (``because``: what of the claim needs it)."""
    if not dagster.settings.run_monitoring:
        pytest.skip(f"the instance in {dagster.namespace} has no run monitoring, which {because}")
