"""Allure titles, labels, steps and attachments: a planted secret never reaches the results, also under xdist."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from reports.evidence import area_of, claims_of, title_of

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PLANTED = "planted-evidence-secret-7f3a9c"


def test_titles_read_like_the_claim() -> None:
    class Fault:
        name = "webserver"

    assert title_of("test_a_run_finishes", ["C3"], {"dagster": "k8s-job", "fault": Fault()}) == (
        "C3 · a run finishes — webserver [k8s-job]")
    assert title_of("test_nodes_are_ready", [], {}) == "nodes are ready"


def test_claims_sort_numerically_and_areas_prefer_ha() -> None:
    assert claims_of(["c10", "parametrize", "c9", "k8s_job"]) == ["C9", "C10"]
    assert area_of(["conformance", "ha", "c12"]) == "HA and chaos"
    assert area_of(["conformance"]) == "Conformance"
    assert area_of(["smoke"]) == "Cluster"


SAMPLE = f'''
import pytest
from reports.evidence import attach_json, attach_text, attach_yaml, step
from reports.redact import register_secret

@pytest.mark.c10
@pytest.mark.parametrize("dagster", ["k8s-job", "celery-k8s"])
def test_env_reaches_pods(dagster):
    register_secret("{PLANTED}")  # as the worker that deploys does
    with step("Launch a run that sees {PLANTED}"):
        attach_text("pod log", "DKC_FROM_SECRET={PLANTED}")
        attach_json("env", {{"DKC_FROM_SECRET": "{PLANTED}", "plain": "value"}})
        attach_yaml("pod spec", [{{"env": [{{"name": "X", "value": "{PLANTED}"}}]}}])
    assert dagster != "celery-k8s", "saw {PLANTED} in the run pod"
'''

# As suites/conftest.py does it: labels while the test is set up, the title when its body starts.
CONFTEST = '''
from pathlib import Path
import pytest
from reports.evidence import label_test, title_test
from reports.session import ReportSession, WorkerRedaction

def pytest_configure(config):
    results = Path(config.getoption("--alluredir"))
    if hasattr(config, "workerinput"):
        config.pluginmanager.register(WorkerRedaction(results), "dkc-worker-redaction")
    else:
        config.pluginmanager.register(ReportSession(Path(__file__).parent / "out", results), "dkc-report")

def identity(item):
    params = getattr(getattr(item, "callspec", None), "params", {})
    return [m.name for m in item.iter_markers()], item.originalname, params

@pytest.fixture(autouse=True)
def labelled(request):
    label_test(*identity(request.node))

@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    title_test(*identity(item))
    yield
'''


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_a_planted_secret_never_reaches_the_allure_results(tmp_path: Path, xdist: list[str]) -> None:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    c10: c10\n")
    results = tmp_path / "out" / "allure-results"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--alluredir={results}",
                           *xdist], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
                          env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, f"one of the two sample tests fails:\n{done.stdout}\n{done.stderr}"
    files = [path for path in results.iterdir() if path.is_file()]
    leaked = [path.name for path in files if PLANTED in path.read_text(errors="replace")]
    assert not leaked, f"the planted secret reached {leaked}"

    results_json = [json.loads(p.read_text()) for p in files if p.name.endswith("-result.json")]
    summary = [result for result in results_json if result["fullName"] == "dkc#conformance-matrix"]
    assert len(summary) == 1 and summary[0]["status"] == "failed", "the matrix entry fails as one of its tests did"
    assert "<b>C10</b>" in summary[0]["descriptionHtml"]
    tests = [result for result in results_json if result not in summary]
    titles = sorted(test["name"] for test in tests)
    assert titles == ["C10 · env reaches pods [celery-k8s]", "C10 · env reaches pods [k8s-job]"]
    labels = {(label["name"], label["value"]) for test in tests for label in test["labels"]}
    assert {("epic", "Other"), ("story", "k8s-job"), ("story", "celery-k8s")} <= labels
    assert any(name == "feature" and value.startswith("C10 · Env vars") for name, value in labels)
    attachments = [a["name"] for test in tests for s in test["steps"] for a in s.get("attachments", [])]
    assert sorted(attachments) == sorted(["pod log", "env", "pod spec"] * 2)


def test_an_xdist_workers_environment_reaches_the_controllers_report() -> None:
    from types import SimpleNamespace

    from reports.allure_files import ReportEnvironment
    from reports.session import ENVIRONMENT_KEY, ReportSession, environment_to_dict

    seen = ReportEnvironment(cluster_provider="kind", kubernetes_version="v1.34.4", node_count=3,
                             dagster_version="1.12.22", combinations=("k8s-job",), git_revision="abc1234")
    controller = ReportSession(Path("/nonexistent"), None)
    controller.pytest_testnodedown(SimpleNamespace(workeroutput={}), None)  # a worker that met no cluster
    assert controller.environment is None
    controller.pytest_testnodedown(SimpleNamespace(workeroutput={ENVIRONMENT_KEY: environment_to_dict(seen)}), None)
    assert controller.environment is not None
    assert controller.environment.properties() == seen.properties()

    from reports.session import record_environment
    worker = SimpleNamespace(workeroutput={}, pluginmanager=SimpleNamespace(get_plugin=lambda name: None))
    record_environment(worker, seen)  # a worker has no report session: it hands the environment over
    assert worker.workeroutput[ENVIRONMENT_KEY] == environment_to_dict(seen)
