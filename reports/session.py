"""The report side of a test session: the claim x combination matrix, Allure's environment, categories
and executor files, and one redaction sweep over everything the session wrote to the report directory.

Registered by the root conftest when ``--report-dir`` is given (``./dkc run`` does). The sweep runs last,
in the process that deployed Dagster, so it knows the secret values to remove.
"""

from __future__ import annotations

import fcntl
import sys
import tarfile
from dataclasses import replace
from pathlib import Path

import pytest

from common.errors import DkcError
from reports.allure_files import ReportEnvironment, write_allure_files, write_matrix_result
from reports.matrix import entries_from, render_matrix_html, write_matrix
from reports.plugin import MatrixRecorder
from reports.redact import REDACTOR

MATRIX_RECORDS = "matrix.jsonl"
MATRIX = "matrix.md"
ENVIRONMENT_KEY = "dkc-report-environment"


def environment_to_dict(environment: ReportEnvironment) -> dict[str, object]:
    """The environment as plain data, for xdist's workeroutput (which carries only what execnet can serialize)."""
    return {"cluster_provider": environment.cluster_provider, "kubernetes_version": environment.kubernetes_version,
            "node_count": environment.node_count, "dagster_version": environment.dagster_version,
            "combinations": list(environment.combinations), "git_revision": environment.git_revision,
            "extra": dict(environment.extra)}


class ReportSession(MatrixRecorder):
    """Records outcomes for the matrix and, at session end, writes the report files and redacts them."""

    def __init__(self, report_dir: Path, alluredir: Path | None) -> None:
        super().__init__(Path(report_dir) / MATRIX_RECORDS)
        self.report_dir, self.alluredir = Path(report_dir), alluredir
        self.environment: ReportEnvironment | None = None  # set once the cluster is known

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if hasattr(session.config, "workerinput"):
            return
        super().pytest_sessionfinish(session)
        entries = entries_from(self.path)
        matrix = write_matrix(entries, self.report_dir / MATRIX)
        if self.alluredir and self.environment:
            self.alluredir.mkdir(parents=True, exist_ok=True)
            environment = replace(self.environment, extra={**self.environment.extra,
                                                           **client_versions(self.environment.dagster_version)})
            write_allure_files(self.alluredir, environment)
        if self.alluredir and entries:
            failed = any(outcome in ("failed", "error", "xpassed") for _, _, outcome in entries)
            write_matrix_result(self.alluredir, render_matrix_html(entries), matrix.read_text(encoding="utf-8"), failed)
        # What this session wrote; the HTML report is made afterwards from these, already redacted, files.
        redacted = [path for target in self._written() for path in REDACTOR.redact_tree(target)]
        print(f"\ndkc: conformance matrix {matrix}" + (f" ({len(redacted)} file(s) redacted)" if redacted else ""),
              file=sys.stderr)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: object, error: object) -> None:
        """An xdist worker is done: take its environment if this controller has none yet."""
        handed = getattr(node, "workeroutput", {}).get(ENVIRONMENT_KEY)
        if self.environment is None and handed:
            self.environment = ReportEnvironment(**handed)

    def _written(self) -> list[Path]:
        targets = [self.report_dir / name for name in ("junit.xml", MATRIX_RECORDS, MATRIX)]
        return [path for path in [*targets, self.alluredir] if path and path.exists()]


def client_versions(dagster_version: str) -> dict[str, str]:
    """The Kubernetes Python client of the suite and, when the suite built it, of the Dagster image: a client
    release can break Dagster in the cluster (dagster-io/dagster#33870: 36.0.0 launched Jobs as system:anonymous)."""
    import kubernetes

    from images.dagster import locked_versions

    found = {"Kubernetes client (suite)": kubernetes.__version__}
    try:
        in_image = locked_versions(dagster_version).get("kubernetes")
    except (DkcError, OSError, tarfile.TarError):
        in_image = None
    if in_image:
        found["Kubernetes client (Dagster image)"] = in_image
    return found


def record_environment(config: pytest.Config, environment: ReportEnvironment) -> None:
    """What the report is made against: kept by this process's report session, or, in an xdist worker (which meets
    the cluster while the controller writes the report), handed to the controller through xdist's workeroutput."""
    report = report_session(config)
    if report is not None:
        report.environment = environment
    elif hasattr(config, "workeroutput"):
        config.workeroutput[ENVIRONMENT_KEY] = environment_to_dict(environment)


def report_session(config: pytest.Config) -> ReportSession | None:
    plugin = config.pluginmanager.get_plugin("dkc-report")
    return plugin if isinstance(plugin, ReportSession) else None


class WorkerRedaction:
    """Under pytest-xdist the secrets are known in the worker that deployed, not in the controller: each worker
    sweeps the Allure results with its own secrets before it exits (one at a time, under a lock)."""

    def __init__(self, alluredir: Path) -> None:
        self.alluredir = Path(alluredir)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self) -> None:
        if not self.alluredir.is_dir():
            return
        with (self.alluredir.parent / ".dkc-redaction.lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            REDACTOR.redact_tree(self.alluredir)
