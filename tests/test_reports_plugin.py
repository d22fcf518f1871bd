"""The matrix recorder merges each test's phases into one outcome, on the xdist controller too."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from reports.plugin import MatrixRecorder, Record, claims_of, combination_of, read_records, without_group, write_records

PROJECT_ROOT = Path(__file__).resolve().parent.parent
NODE = "suites/test_propagation.py::test_env_vars_reach_run_pods[k8s-job]"


def fake_report(when: str, outcome: str, nodeid: str = NODE, keywords: dict[str, int] | None = None,
                **extra: Any) -> Any:
    keywords = {"c10": 1, "k8s_job": 1, "conformance": 1} if keywords is None else keywords
    return SimpleNamespace(nodeid=nodeid, keywords=keywords, when=when, outcome=outcome, longrepr=None, **extra)


def outcome_of(*phases: Any) -> str:
    recorder = MatrixRecorder(Path("unused.jsonl"))
    for report in phases:
        recorder.pytest_runtest_logreport(report)
    (record,) = recorder.records.values()
    return record.outcome


XFAIL = {"wasxfail": "dagster-io/dagster#13728"}


@pytest.mark.parametrize(("phases", "expected"), [
    ([("setup", "passed"), ("call", "passed"), ("teardown", "passed")], "passed"),
    ([("setup", "passed"), ("call", "failed"), ("teardown", "passed")], "failed"),
    ([("setup", "failed"), ("teardown", "passed")], "error"),
    ([("setup", "skipped"), ("teardown", "passed")], "skipped"),
    ([("setup", "passed"), ("call", "skipped"), ("teardown", "passed")], "skipped"),
    ([("setup", "passed"), ("call", "passed"), ("teardown", "failed")], "error"),
    ([("setup", "passed"), ("call", "failed"), ("teardown", "failed")], "failed"),
    ([("setup", "failed"), ("teardown", "failed")], "error"),
])
def test_phases_merge_like_pytest_counts_them(phases: list[tuple[str, str]], expected: str) -> None:
    assert outcome_of(*(fake_report(when, outcome) for when, outcome in phases)) == expected


def test_xfail_and_xpass() -> None:
    setup, teardown = fake_report("setup", "passed"), fake_report("teardown", "passed")
    assert outcome_of(setup, fake_report("call", "skipped", **XFAIL), teardown) == "xfailed"
    assert outcome_of(setup, fake_report("call", "passed", **XFAIL), teardown) == "xpassed"
    strict = fake_report("call", "failed")
    strict.longrepr = "[XPASS(strict)] dagster-io/dagster#13728"
    assert outcome_of(setup, strict, teardown) == "xpassed"
    assert outcome_of(fake_report("setup", "skipped", **XFAIL), teardown) == "xfailed", "xfail(run=False)"
    assert outcome_of(setup, fake_report("call", "skipped", **XFAIL), fake_report("teardown", "failed")) == "error"


def test_claims_and_combination_from_keywords_and_node_id() -> None:
    assert claims_of({"c10": 1, "c1": 1, "c16": 1, "c17": 1, "c32": 1, "conformance": 1, "c1x": 1}) == (
        "C1", "C10", "C16", "C17")
    assert combination_of("t.py::test_x", {"celery_k8s": 1}) == "celery-k8s"
    assert combination_of("t.py::test_x[k8s-multiprocess]", {}) == "k8s-multiprocess"
    assert combination_of("t.py::test_kill[webserver-k8s-job]", {}) == "k8s-job"
    assert combination_of("t.py::test_x[k8s-jobs]", {}) == "—"
    assert combination_of("t.py::test_x", {"k8s": 1}) == "—"


def test_records_round_trip(tmp_path: Path) -> None:
    records = [Record(NODE, ("C10",), "k8s-job", "passed"), Record("t.py::test_y", (), "—", "skipped")]
    path = write_records(records, tmp_path / "out" / "matrix.jsonl")
    assert read_records(path) == records
    assert json.loads(path.read_text().splitlines()[1])["combination"] == "—"


SAMPLE_TESTS = '''
import pytest

@pytest.fixture
def broken():
    raise RuntimeError("setup broke")

@pytest.fixture
def dirty():
    yield
    raise RuntimeError("teardown broke")

@pytest.mark.c2
@pytest.mark.parametrize("dagster", ["k8s-multiprocess", "k8s-job", "celery-k8s"])
def test_claim(dagster):
    assert dagster != "celery-k8s"

@pytest.mark.c10
@pytest.mark.xfail(reason="dagster-io/dagster#13728", strict=True)
def test_known():
    assert False

@pytest.mark.c10
@pytest.mark.xfail(reason="fixed upstream", strict=True)
def test_fixed():
    pass

@pytest.mark.c1
def test_setup_error(broken):
    pass

@pytest.mark.c1
def test_teardown_error(dirty):
    pass

@pytest.mark.c3
def test_skipped():
    pytest.skip("combination not selected")

def test_no_claim():
    pass
'''

EXPECTED = {
    "test_claim[k8s-multiprocess]": (["C2"], "k8s-multiprocess", "passed"),
    "test_claim[k8s-job]": (["C2"], "k8s-job", "passed"),
    "test_claim[celery-k8s]": (["C2"], "celery-k8s", "failed"),
    "test_known": (["C10"], "—", "xfailed"),
    "test_fixed": (["C10"], "—", "xpassed"),
    "test_setup_error": (["C1"], "—", "error"),
    "test_teardown_error": (["C1"], "—", "error"),
    "test_skipped": (["C3"], "—", "skipped"),
    "test_no_claim": ([], "—", "passed"),
}


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]], ids=["in-process", "xdist"])
def test_a_real_session_writes_one_line_per_test(tmp_path: Path, xdist: list[str]) -> None:
    (tmp_path / "test_sample.py").write_text(SAMPLE_TESTS)
    (tmp_path / "conftest.py").write_text(textwrap.dedent('''
        from pathlib import Path
        from reports.plugin import MatrixRecorder

        def pytest_configure(config):
            config.pluginmanager.register(MatrixRecorder(Path(__file__).parent / "out" / "matrix.jsonl"), "dkc-matrix")
    '''))
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    c1: c1\n    c2: c2\n    c3: c3\n    c10: c10\n")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *xdist], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False,
                          env={"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, f"the sample session should fail (one failure):\n{done.stdout}\n{done.stderr}"
    records = read_records(tmp_path / "out" / "matrix.jsonl")
    seen = {record.nodeid.split("::")[1]: (list(record.claims), record.combination, record.outcome)
            for record in records}
    assert seen == EXPECTED
    assert len(records) == len(EXPECTED), "one line per test, also under xdist"


def test_a_test_is_named_as_in_one_process_when_xdist_grouped_it() -> None:
    assert without_group("suites/test_ha.py::test_x[k8s-job]@k8s-job") == "suites/test_ha.py::test_x[k8s-job]"
    assert without_group("suites/test_ha.py::test_x[a@b]") == "suites/test_ha.py::test_x[a@b]"
