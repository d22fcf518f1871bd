"""C16: no plaintext credential in any run or step pod's args or env (passwords via secretKeyRef).

External job pods are checked in test_external_jobs.

The Postgres password and the test Secret's value are known to the suite, so it searches every run
and step pod of the namespace for them, including inside the decoded step args.
"""

from __future__ import annotations

import pytest

from deploy.deployment import Deployment
from suites.secrets import leaks_in, skip_if_some_secret_unknown

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster, pytest.mark.c16]


def test_no_secret_value_in_run_or_step_pods(dagster: Deployment) -> None:
    run_id = dagster.run_to_success("report")
    pods = dagster.footprint(run_id).pods
    assert pods, f"no pods found for run {run_id}"

    leaks = leaks_in(dagster, pods)

    assert not leaks, "plaintext credentials: " + "; ".join(leaks)
    skip_if_some_secret_unknown(dagster)
