"""Environment, categories and executor files, as Allure reads them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from reports import allure_files
from reports.allure_files import (
    CATEGORIES,
    ReportEnvironment,
    ci_executor,
    git_revision,
    write_allure_files,
    write_categories,
    write_environment,
    write_executor,
)

ENVIRONMENT = ReportEnvironment("local", "v1.34.4", 1, "1.13.27", ("k8s-job", "celery-k8s"), "abc1234")


def read_properties(path: Path) -> dict[str, str]:
    """A minimal reader of what write_environment produces (escaped keys, \\uXXXX escapes)."""
    def unescape(text: str) -> str:
        text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda match: chr(int(match[1], 16)), text)
        return re.sub(r"\\(.)", r"\1", text)

    result = {}
    for line in path.read_text(encoding="ascii").splitlines():
        key, value = re.split(r"(?<!\\)=", line, maxsplit=1)
        result[unescape(key)] = unescape(value)
    return result


def test_environment_properties(tmp_path: Path) -> None:
    path = write_environment(tmp_path / "results", ENVIRONMENT)
    assert read_properties(path) == {
        "Cluster provider": "local", "Kubernetes version": "v1.34.4", "Node count": "1",
        "Dagster version": "1.13.27", "Combinations": "k8s-job, celery-k8s", "Git revision": "abc1234",
    }
    assert "Cluster\\ provider=local" in path.read_text(), "spaces in keys are escaped for Java's Properties"


def test_environment_values_are_escaped_and_redacted(tmp_path: Path) -> None:
    odd = ReportEnvironment("existing: https://admin:hunter22@k8s.local — ü", "v1", 3, "1.0", (), "rev")
    properties = read_properties(write_environment(tmp_path, odd))
    assert properties["Cluster provider"] == "existing: https://admin:***@k8s.local — ü"


def test_git_revision_of_this_checkout_or_unknown(tmp_path: Path) -> None:
    revision = git_revision()
    assert revision == "unknown" or re.fullmatch(r"[0-9a-f]{4,40}", revision)
    assert git_revision(tmp_path) == "unknown", "not a git checkout"


def test_git_revision_without_git(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_git(*args: object, **kwargs: object) -> None:
        raise FileNotFoundError("git")

    monkeypatch.setattr(subprocess, "run", no_git)
    assert git_revision() == "unknown"
    assert ReportEnvironment("kind", "v1", 1, "1", ()).properties()["Git revision"] == "unknown"


def test_categories_file_and_what_each_category_catches(tmp_path: Path) -> None:
    assert json.loads(write_categories(tmp_path).read_text()) == CATEGORIES

    def category(message: str, status: str) -> list[str]:
        # Allure matches with Java's String.matches: the whole message must match.
        return [c["name"] for c in CATEGORIES
                if status in c["matchedStatuses"] and re.fullmatch(c["messageRegex"], message)]

    assert category("chaos.faults.FaultNotApplied: fault webserver not applied: no pod", "failed") == [
        "Fault not applied"]
    assert category("chaos.run.ExperimentError: activity kill failed", "broken") == ["Fault not applied"]
    assert category("common.waits.WaitTimeout: timed out after 30s waiting for\nthe pod", "broken") == [
        "Infrastructure / timeout"]
    assert category("deploy.bringup.DeployError: pod x CrashLoopBackOff", "broken") == ["Infrastructure / timeout"]
    assert category("AssertionError: run ended FAILURE\nassert 'FAILURE' == 'SUCCESS'", "failed") == [
        "Product defects"]
    assert category("XFAIL dagster-io/dagster#13728\n\nAssertionError: env missing", "skipped") == [
        "Known upstream issue"]
    assert category("XPASS dagster-io/dagster#13728", "passed") == ["Known upstream issue fixed"]
    assert category("Skipped: combination not selected", "skipped") == []


@pytest.mark.parametrize(("env", "expected"), [
    ({"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "987", "GITHUB_RUN_NUMBER": "12", "GITHUB_WORKFLOW": "nightly",
      "GITHUB_SERVER_URL": "https://github.example", "GITHUB_REPOSITORY": "org/repo", "CI": "true"},
     {"name": "GitHub Actions", "type": "github", "url": "https://github.example", "buildOrder": 12,
      "buildName": "nightly #12", "buildUrl": "https://github.example/org/repo/actions/runs/987"}),
    ({"GITLAB_CI": "true", "CI_JOB_URL": "https://gitlab.example/g/p/-/jobs/5", "CI_PIPELINE_ID": "77",
      "CI_PROJECT_PATH": "g/p", "CI_SERVER_URL": "https://gitlab.example", "CI": "true"},
     {"name": "GitLab CI", "type": "gitlab", "url": "https://gitlab.example", "buildOrder": 77,
      "buildName": "g/p #77", "buildUrl": "https://gitlab.example/g/p/-/jobs/5"}),
    ({"BUILD_URL": "https://jenkins.example/job/x/3/", "BUILD_NUMBER": "3", "JOB_NAME": "x",
      "JENKINS_URL": "https://jenkins.example/"},
     {"name": "Jenkins", "type": "jenkins", "url": "https://jenkins.example/", "buildOrder": 3,
      "buildName": "x #3", "buildUrl": "https://jenkins.example/job/x/3/"}),
    ({"CI": "true"}, {"name": "CI", "type": "ci"}),
    ({"HOME": "/root"}, None),
])
def test_ci_executor(env: dict[str, str], expected: dict[str, object] | None) -> None:
    assert ci_executor(env) == expected


def test_executor_file_only_under_ci(tmp_path: Path) -> None:
    assert write_executor(tmp_path, {}) is None and not (tmp_path / "executor.json").exists()
    path = write_executor(tmp_path, {"CI": "true"})
    assert path is not None and json.loads(path.read_text()) == {"name": "CI", "type": "ci"}


def test_write_allure_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    for name in ("GITHUB_ACTIONS", "GITLAB_CI", "CI_JOB_URL", "BUILD_URL"):
        monkeypatch.delenv(name, raising=False)
    assert [p.name for p in write_allure_files(tmp_path, ENVIRONMENT)] == ["environment.properties",
                                                                          "categories.json"]
    written = write_allure_files(tmp_path, ENVIRONMENT, {"CI": "true"})
    assert [p.name for p in written] == ["environment.properties", "categories.json", "executor.json"]
    assert allure_files.PROJECT_ROOT.joinpath("reports", "allure_files.py").is_file()


def test_extra_properties_follow_the_fixed_ones() -> None:
    environment = ReportEnvironment("local", "v1.34.4", 1, "1.13.27", (), "rev",
                                    extra={"Kubernetes client (suite)": "36.0.3"})
    assert list(environment.properties())[-2:] == ["Git revision", "Kubernetes client (suite)"]
