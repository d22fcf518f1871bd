"""The nightly workflow users copy (docs/nightly.yml) passes a real workflow linter, and the dkc options it uses exist.

actionlint is built from the Go module proxy into the cache once (like the cluster binaries).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from cli.main import build_parser
from clusters.local.build import TESTED_K8S_VERSIONS, GoBuild, ensure_built
from images.dagster import TESTED_DAGSTER_VERSIONS

WORKFLOW = Path(__file__).resolve().parent.parent / "docs" / "nightly.yml"
ACTIONLINT = GoBuild(name="actionlint", module="github.com/rhysd/actionlint", version="v1.7.12",
                     binaries={"actionlint": "github.com/rhysd/actionlint/cmd/actionlint"})


@pytest.fixture(scope="module")
def actionlint() -> Path:
    return ensure_built(ACTIONLINT) / "actionlint"


def _lint(actionlint: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(actionlint), "-no-color", str(path)], capture_output=True, text=True, timeout=120,
                          check=False)


def test_the_nightly_workflow_passes_actionlint(actionlint: Path) -> None:
    done = _lint(actionlint, WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_linter_catches_a_broken_workflow(actionlint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "nightly.yml"
    broken.write_text(WORKFLOW.read_text(encoding="utf-8").replace("${{ matrix.combination }}",
                                                                    "${{ matrix.combinatoin }}"), encoding="utf-8")
    done = _lint(actionlint, broken)
    assert done.returncode != 0 and "combinatoin" in done.stdout


def _jobs() -> dict[str, dict]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]


def _dkc_commands() -> list[list[str]]:
    """Every ``dkc`` command line in the workflow's run scripts, up to ``--`` (the rest goes to pytest) or a
    redirection, with the workflow's expressions and shell variables as placeholders."""
    found = []
    for step in (step for job in _jobs().values() for step in job["steps"]):
        for line in step.get("run", "").splitlines():
            match = re.search(r"(?:\./dkc|\.venv/bin/dkc) (.*)", line)
            if match:
                words = shlex.split(re.sub(r"\$\{\{[^}]*\}\}", "X", match[1]))
                ends = [words.index(stop) for stop in ("--", ">") if stop in words]
                found.append(words[: min(ends)] if ends else words)
    return found


def test_every_dkc_command_in_the_workflow_parses() -> None:
    commands = _dkc_commands()
    assert sorted(words[0] for words in commands) == ["compare", "compare", "run", "run"]
    for words in commands:
        build_parser().parse_args(words)  # an unknown option exits 2 (SystemExit fails the test)


def test_the_workflow_matrices_are_the_versions_the_suite_is_tested_on() -> None:
    jobs = _jobs()
    assert tuple(jobs["conformance"]["strategy"]["matrix"]["dagster"]) == TESTED_DAGSTER_VERSIONS
    assert tuple(jobs["kubernetes"]["strategy"]["matrix"]["k8s"]) == TESTED_K8S_VERSIONS
