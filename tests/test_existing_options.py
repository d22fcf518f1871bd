"""Bad input for ``--dagster existing`` stops the session in one line before anything is touched (no cluster)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def run_suites(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", *args],
                          cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_existing_without_a_namespace_is_a_usage_error() -> None:
    done = run_suites("--dagster", "existing", "-m", "c1")
    assert done.returncode == 4, done.stdout + done.stderr
    assert "--dagster existing needs --dagster-namespace NS" in done.stderr


def test_chaos_against_an_existing_deployment_needs_the_opt_in() -> None:
    done = run_suites("--dagster", "existing", "--dagster-namespace", "team-dagster", "-m", "c3 and k8s_job")
    assert done.returncode == 2, done.stdout + done.stderr
    output = done.stdout + done.stderr
    assert "4 selected test(s) kill pods or inject faults" in output and "--allow-chaos" in output
    assert "team-dagster" in output


def test_outage_claims_run_on_the_chosen_combination_only_and_say_so_elsewhere() -> None:
    """`./dkc test` passes --outages-on k8s-job to fit CI: elsewhere each outage claim is a skip naming the option."""
    done = run_suites("--outages-on", "k8s-job", "--combination", "k8s-multiprocess", "-m", "c25", "-rs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "outage claims run on k8s-job only in this session (--outages-on)" in done.stdout
    assert "1 skipped" in done.stdout
