"""Files the suite writes into the Allure results directory itself: environment, categories, executor,
and the conformance matrix as a summary entry.

Allure reads them when it generates the report: ``environment.properties`` fills the Environment
widget, ``categories.json`` sorts failures by cause, ``executor.json`` links the CI build; the matrix
is a result of its own (epic "Summary") whose description is the claim x combination table.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reports.redact import redact_text

__all__ = [
    "CATEGORIES",
    "ReportEnvironment",
    "ci_executor",
    "git_revision",
    "write_allure_files",
    "write_categories",
    "write_environment",
    "write_executor",
    "write_matrix_result",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Messages of the suite's own exceptions, as allure-pytest records them ("module.Class: message"; an
# xfail's message starts with "XFAIL <reason>"). Allure matches a regex against the whole message, so
# each starts with (?s) (messages span lines) and .* on both sides.
_FAULT_NOT_APPLIED = r"FaultNotApplied|ExperimentError|fault .* not applied"
_INFRASTRUCTURE = r"WaitTimeout|timed out|ClusterError|DeployError|PreflightError|BuildError|ApiException"

CATEGORIES: list[dict[str, Any]] = [
    {
        "name": "Fault not applied",
        "description": "The chaos experiment ran but its fault could not be proven: never a pass.",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": rf"(?s).*({_FAULT_NOT_APPLIED}).*",
    },
    {
        "name": "Infrastructure / timeout",
        "description": "The cluster, the deployment or a wait gave out before the claim could be judged.",
        "matchedStatuses": ["failed", "broken"],
        "messageRegex": rf"(?s).*({_INFRASTRUCTURE}).*",
    },
    {
        "name": "Known upstream issue",
        "description": "A strict xfail: Dagster does not do this yet (see the reason for the upstream issue).",
        "matchedStatuses": ["skipped"],
        "messageRegex": r"(?s)XFAIL.*",
    },
    {
        "name": "Known upstream issue fixed",
        "description": "A known issue no longer reproduces: remove its xfail.",
        "matchedStatuses": ["passed", "failed"],
        "messageRegex": r"(?s).*XPASS.*",
    },
    {
        "name": "Product defects",  # Allure's own name for failures no category matched: one group
        "description": "Dagster on Kubernetes did not do what it promises.",
        "matchedStatuses": ["failed"],
        # Everything failed that no category above claims (Allure puts a result in every match).
        "messageRegex": rf"(?s)(?!.*({_FAULT_NOT_APPLIED}|{_INFRASTRUCTURE}|XPASS)).*",
    },
]


@dataclass(frozen=True)
class ReportEnvironment:
    """What the report was made against, for Allure's Environment widget."""

    cluster_provider: str
    kubernetes_version: str
    node_count: int
    dagster_version: str
    combinations: Sequence[str]
    git_revision: str | None = None  # None: read it from the checkout
    extra: Mapping[str, str] = field(default_factory=dict)  # e.g. the Kubernetes client versions

    def properties(self) -> dict[str, str]:
        return {
            "Cluster provider": self.cluster_provider,
            "Kubernetes version": self.kubernetes_version,
            "Node count": str(self.node_count),
            "Dagster version": self.dagster_version,
            "Combinations": ", ".join(self.combinations),
            "Git revision": self.git_revision or git_revision(),
            **self.extra,
        }


def git_revision(checkout: Path = PROJECT_ROOT) -> str:
    """``git rev-parse --short HEAD`` of the checkout, or ``unknown`` (no git, not a clone, a tarball)."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=checkout, capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def _escape_property(text: str, key: bool) -> str:
    """Java .properties escaping: Allure loads the file as ISO-8859-1, so anything else becomes \\uXXXX."""
    out = []
    for index, char in enumerate(text):
        if char in "\\=:#!" or (char == " " and (key or index == 0)):
            out.append("\\" + char)
        elif char in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif ord(char) > 0x7E or ord(char) < 0x20:
            out.append(f"\\u{ord(char):04x}" if ord(char) <= 0xFFFF else "?")
        else:
            out.append(char)
    return "".join(out)


def write_environment(results_dir: Path, environment: ReportEnvironment) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"{_escape_property(key, True)}={_escape_property(redact_text(value), False)}"
             for key, value in environment.properties().items()]
    path = results_dir / "environment.properties"
    path.write_text("\n".join(lines) + "\n", encoding="ascii")
    return path


def write_categories(results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "categories.json"
    path.write_text(json.dumps(CATEGORIES, indent=2) + "\n", encoding="utf-8")
    return path


def _build_number(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def ci_executor(env: Mapping[str, str]) -> dict[str, Any] | None:
    """Allure's executor record for the CI system named by the usual variables, or None outside CI."""
    if env.get("GITHUB_ACTIONS") == "true" and env.get("GITHUB_RUN_ID"):
        server = env.get("GITHUB_SERVER_URL", "").rstrip("/")
        build_url = f"{server}/{env.get('GITHUB_REPOSITORY', '')}/actions/runs/{env['GITHUB_RUN_ID']}"
        number = env.get("GITHUB_RUN_NUMBER") or env["GITHUB_RUN_ID"]
        return {"name": "GitHub Actions", "type": "github", "url": server or None, "buildOrder": _build_number(number),
                "buildName": f"{env.get('GITHUB_WORKFLOW', 'workflow')} #{number}", "buildUrl": build_url}
    if env.get("GITLAB_CI") or env.get("CI_JOB_URL"):
        pipeline = env.get("CI_PIPELINE_ID", "")
        return {"name": "GitLab CI", "type": "gitlab", "url": env.get("CI_SERVER_URL"),
                "buildOrder": _build_number(pipeline),
                "buildName": f"{env.get('CI_PROJECT_PATH', 'pipeline')} #{pipeline}".strip(),
                "buildUrl": env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL")}
    if env.get("BUILD_URL") and env.get("BUILD_NUMBER"):
        return {"name": "Jenkins", "type": "jenkins", "url": env.get("JENKINS_URL"),
                "buildOrder": _build_number(env["BUILD_NUMBER"]),
                "buildName": f"{env.get('JOB_NAME', 'build')} #{env['BUILD_NUMBER']}", "buildUrl": env["BUILD_URL"]}
    if env.get("CI", "").lower() in ("true", "1", "yes"):
        return {"name": "CI", "type": "ci"}
    return None


def write_executor(results_dir: Path, env: Mapping[str, str] | None = None) -> Path | None:
    """Write ``executor.json`` when running under CI; returns its path, or None when not in CI."""
    executor = ci_executor(os.environ if env is None else env)
    if executor is None:
        return None
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / "executor.json"
    cleaned = {key: value for key, value in executor.items() if value not in (None, "")}
    path.write_text(json.dumps(cleaned, indent=2) + "\n", encoding="utf-8")
    return path


def write_allure_files(results_dir: Path, environment: ReportEnvironment,
                       env: Mapping[str, str] | None = None) -> list[Path]:
    """All three files (executor only under CI); returns the paths written."""
    written = [write_environment(results_dir, environment), write_categories(results_dir)]
    executor = write_executor(results_dir, env)
    return [*written, *([executor] if executor else [])]


def write_matrix_result(results_dir: Path, table_html: str, markdown: str, failed: bool) -> Path:
    """The conformance matrix as one more entry of the report: failed when any claim failed, so the summary
    reads the same as the tests under it."""
    results_dir.mkdir(parents=True, exist_ok=True)
    attachment = f"{uuid.uuid4()}-attachment.md"
    (results_dir / attachment).write_text(markdown, encoding="utf-8")
    now = int(time.time() * 1000)
    result = {
        "uuid": str(uuid.uuid4()), "historyId": "dkc-conformance-matrix", "testCaseId": "dkc-conformance-matrix",
        "name": "Conformance matrix: claims x combinations", "fullName": "dkc#conformance-matrix",
        "status": "failed" if failed else "passed", "stage": "finished", "start": now, "stop": now,
        "statusDetails": {"message": "at least one claim failed: see the matrix"} if failed else {},
        "descriptionHtml": table_html,
        "labels": [{"name": "epic", "value": "Summary"}, {"name": "feature", "value": "Conformance matrix"},
                   {"name": "suite", "value": "Summary"}],
        "attachments": [{"name": "matrix.md", "source": attachment, "type": "text/markdown"}],
    }
    path = results_dir / f"{result['uuid']}-result.json"
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return path
