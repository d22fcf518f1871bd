"""Self-tests: who deletes a shared cluster (the last session out, only if a session made it), and Ctrl-C/SIGTERM
ending a session the way a normal end does (no cluster: fake providers, temp dirs, small pytest sessions)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from cli import main as cli
from clusters import ClusterInfo, ClusterStatus, ProviderOptions, session
from common.signals import Interrupts, signal_all, worker_pids
from common.waits import Observation, wait_for

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class FakeCluster:
    """One cluster's existence, shared by every provider object made for it."""

    def __init__(self, exists: bool = False) -> None:
        self.exists, self.created, self.deleted = exists, 0, 0


class FakeProvider:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    def status(self) -> ClusterStatus:
        return ClusterStatus(exists=self.cluster.exists, healthy=self.cluster.exists)

    def create(self) -> ClusterInfo:
        if not self.cluster.exists:
            self.cluster.exists, self.cluster.created = True, self.cluster.created + 1
        return ClusterInfo(provider="local", name="t", kubeconfig=Path("/dev/null"), created_by_us=True)

    def delete(self) -> None:
        self.cluster.exists, self.cluster.deleted = False, self.cluster.deleted + 1


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    monkeypatch.setenv("DKC_CACHE_DIR", str(tmp_path / "cache"))
    fake = FakeCluster()
    monkeypatch.setattr(session, "get_provider", lambda kind, options: FakeProvider(fake))
    return fake


def run_dir(tmp_path: Path, name: str, pid: int | None = None) -> Path:
    path = tmp_path / name
    path.mkdir()
    (path / session.CONTROLLER_PID).write_text(str(pid or os.getpid()))
    return path


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


OPTIONS = ProviderOptions(name="t")
KEEP = ProviderOptions(name="t", keep=True)


def test_the_last_session_out_deletes_a_cluster_that_a_session_created(cluster: FakeCluster, tmp_path: Path) -> None:
    first, second = run_dir(tmp_path, "first"), run_dir(tmp_path, "second")
    session.acquire("local", OPTIONS, first)
    session.acquire("local", OPTIONS, second)
    assert cluster.created == 1

    session.release("local", OPTIONS, first)  # the creator leaves first
    assert cluster.exists, "deleted while another session still uses it"
    session.release("local", OPTIONS, second)
    assert not cluster.exists and cluster.deleted == 1


def test_a_cluster_that_existed_before_any_session_is_never_deleted_by_one(cluster: FakeCluster,
                                                                           tmp_path: Path) -> None:
    cluster.exists = True  # made by `dkc up`
    for name in ("first", "second"):
        session.acquire("local", OPTIONS, run_dir(tmp_path, name))
    for name in ("first", "second"):
        session.release("local", OPTIONS, tmp_path / name)
    assert cluster.exists and cluster.deleted == 0


def test_xdist_workers_of_one_session_count_once(cluster: FakeCluster, tmp_path: Path) -> None:
    only = run_dir(tmp_path, "only")
    for _ in range(3):  # three workers acquire for the same session
        session.acquire("local", OPTIONS, only)
    session.release("local", OPTIONS, only)
    assert not cluster.exists


def test_a_session_that_died_does_not_hold_the_cluster(cluster: FakeCluster, tmp_path: Path) -> None:
    creator, killed = run_dir(tmp_path, "creator"), run_dir(tmp_path, "killed", pid=dead_pid())
    session.acquire("local", OPTIONS, creator)
    session.acquire("local", OPTIONS, killed)  # its process is gone (SIGKILL): it never releases
    session.release("local", OPTIONS, creator)
    assert not cluster.exists


def test_keep_keeps_the_cluster_for_good(cluster: FakeCluster, tmp_path: Path) -> None:
    session.acquire("local", KEEP, run_dir(tmp_path, "debugging"))
    session.release("local", KEEP, tmp_path / "debugging")
    assert cluster.exists
    later = run_dir(tmp_path, "later")
    session.acquire("local", OPTIONS, later)
    session.release("local", OPTIONS, later)
    assert cluster.exists, "a later session deleted a cluster kept with --keep"


def test_dkc_up_adopts_a_cluster_a_session_made(cluster: FakeCluster, tmp_path: Path) -> None:
    running = run_dir(tmp_path, "running")
    session.acquire("local", OPTIONS, running)
    session.adopt("local", OPTIONS)
    session.release("local", OPTIONS, running)
    assert cluster.exists


def test_a_session_that_never_acquired_releases_nothing(cluster: FakeCluster, tmp_path: Path) -> None:
    session.acquire("local", OPTIONS, run_dir(tmp_path, "user"))
    session.release("local", OPTIONS, run_dir(tmp_path, "self-tests-only"))
    assert cluster.exists


# -- signals in one process ------------------------------------------------------------------------------------------

def test_the_first_signal_interrupts_later_ones_and_cleanup_are_left_alone() -> None:
    said: list[str] = []
    interrupts = Interrupts(say=said.append, clock=iter([0.0, 0.5, 10.0]).__next__)
    with pytest.raises(KeyboardInterrupt):
        interrupts.handle(signal.SIGTERM)
    interrupts.handle(signal.SIGTERM)  # the same one again at once (terminal and dkc): silent
    interrupts.handle(signal.SIGINT)  # Ctrl-C pressed during cleanup: said, never raised
    assert interrupts.received == signal.SIGTERM
    assert len(said) == 2 and "already cleaning up" in said[1] and "kill -9" in said[1]


def test_a_signal_during_shielded_cleanup_does_not_raise() -> None:
    interrupts = Interrupts(say=lambda line: None)
    with interrupts.shielded():
        interrupts.handle(signal.SIGINT)
    assert interrupts.received == signal.SIGINT


def test_a_controller_that_stops_otherwise_does_not_raise() -> None:
    interrupts = Interrupts(say=lambda line: None)
    interrupts.stop_without_raising = lambda signum: True
    interrupts.handle(signal.SIGTERM)
    assert interrupts.received == signal.SIGTERM


SIGINT_PROBE = """
import signal, sys, time
signal.signal(signal.SIGINT, lambda *_: (print("got SIGINT", flush=True), sys.exit(0)))
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def start_probe(tmp_path: Path, name: str, code: str = SIGINT_PROBE) -> tuple[subprocess.Popen[str], Path]:
    log = tmp_path / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT, text=True)
    wait_for(f"{name} to be ready", lambda: Observation("ready" in log.read_text(), log.read_text()), 20, 0.05)
    return proc, log


def test_worker_pids_are_read_from_the_run_dir_and_signalled(tmp_path: Path) -> None:
    proc, log = start_probe(tmp_path, "worker")
    (tmp_path / "worker-gw0.pid").write_text(str(proc.pid))
    (tmp_path / "worker-gw1.pid").write_text(str(dead_pid()))
    assert signal_all(worker_pids(tmp_path)) == [proc.pid]
    assert proc.wait(10) == 0 and "got SIGINT" in log.read_text()


# -- dkc waits for pytest instead of killing it ---------------------------------------------------------------------

CLEANING_CHILD = """
import signal, sys, time
def interrupted(*_):
    time.sleep(0.5)  # cleanup that takes a while
    print("cleaned up", flush=True)
    sys.exit(2)
signal.signal(signal.SIGINT, interrupted)
print("ready", flush=True)
while True:
    time.sleep(0.05)
"""


def test_dkc_passes_ctrl_c_on_once_and_waits_for_pytest_to_clean_up(tmp_path: Path) -> None:
    child, log = start_probe(tmp_path, "pytest", CLEANING_CHILD)
    timer = threading.Timer(0.2, lambda: [os.kill(os.getpid(), signal.SIGINT) for _ in range(2)])
    timer.start()
    try:
        status = cli.wait_for_pytest(child)
    finally:
        timer.join()
    assert status == 130
    assert child.returncode == 2, f"pytest was killed (status {child.returncode}) instead of cleaning up"
    assert log.read_text().count("cleaned up") == 1


# -- a pytest-xdist session interrupted: each worker tears its fixtures down before the controller ends ----------

SESSION_CONFTEST = """
import os, time
from pathlib import Path
import pytest
from common.signals import SessionSignals

LOG = Path(os.environ["PROBE_LOG"])

def note(line):
    with LOG.open("a") as out:
        out.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'controller')} {line}\\n")

def pytest_configure(config):
    if not hasattr(config, "workerinput"):
        run_dir = Path(os.environ["DKC_RUN_DIR"])
        (run_dir / "controller.pid").write_text(str(os.getpid()))
    config.pluginmanager.register(SessionSignals(config, Path(os.environ["DKC_RUN_DIR"])), "dkc-signals")

@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session):
    note("sessionfinish")

@pytest.fixture(scope="session")
def deployment():
    note("deployed")
    yield
    time.sleep(12)  # longer than xdist's 10 s before it kills a worker that does not exit
    note("torn down")
"""

SESSION_TESTS = """
import time
def test_one(deployment):
    time.sleep(60)
def test_two(deployment):
    time.sleep(60)
"""


def _interruptible() -> None:
    """An xdist worker (these self-tests under ``dkc test``) ignores SIGINT, and a child inherits that: Python then
    installs no KeyboardInterrupt handler in the session under test."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize(("signum", "to_group"), [(signal.SIGTERM, False), (signal.SIGINT, False),
                                                 (signal.SIGINT, True)],
                         ids=["SIGTERM to the controller", "SIGINT to the controller", "Ctrl-C (the process group)"])
def test_an_interrupted_xdist_session_tears_every_worker_down_first(tmp_path: Path, signum: int,
                                                                    to_group: bool) -> None:
    (tmp_path / "conftest.py").write_text(SESSION_CONFTEST)
    (tmp_path / "test_slow.py").write_text(SESSION_TESTS)
    (tmp_path / "run").mkdir()
    probe = tmp_path / "probe.log"
    probe.touch()
    env = {**os.environ, "PROBE_LOG": str(probe), "DKC_RUN_DIR": str(tmp_path / "run"),
           "PYTHONPATH": str(PROJECT_ROOT)}
    env.pop("PYTEST_XDIST_WORKER", None)
    out = tmp_path / "out.txt"
    with out.open("w") as output:
        proc = subprocess.Popen([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider",
                                 "--rootdir", str(tmp_path), "-c", "/dev/null", str(tmp_path)],
                                cwd=tmp_path, env=env, stdout=output, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_interruptible)
    try:
        wait_for("both workers to deploy", lambda: Observation(probe.read_text().count("deployed") == 2,
                                                               probe.read_text()), 60, 0.1)
        if to_group:  # as the terminal does: controller and workers at once
            os.killpg(proc.pid, signum)
        else:  # the controller only: it must pass it on to its workers
            proc.send_signal(signum)
        proc.wait(90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    lines = probe.read_text().splitlines()
    assert sorted(line for line in lines if line.endswith("torn down")) == ["gw0 torn down", "gw1 torn down"], (
        f"{lines}\n{out.read_text()[-2000:]}")
    assert lines[-1] == "controller sessionfinish", lines
    assert proc.returncode == 2, out.read_text()[-2000:]


SWALLOWING = """
import os, signal, sys, time
from common.signals import Interrupts
Interrupts(say=lambda line: None).install()

class Finalized:
    def __del__(self):
        os.kill(os.getpid(), signal.SIGTERM)  # handled in here, where Python ignores exceptions

try:
    Finalized()
    for _ in range(2000):
        time.sleep(0.001)
    print("ran on")
except KeyboardInterrupt:
    print("interrupted")
"""


def test_an_interrupt_swallowed_where_exceptions_are_ignored_is_delivered_again() -> None:
    proc = subprocess.run([sys.executable, "-c", SWALLOWING], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, check=False)
    assert proc.stdout.strip() == "interrupted", proc.stdout + proc.stderr


def test_a_session_started_inside_another_leaves_that_ones_cluster_alone(tmp_path: Path) -> None:
    """A self-test running the suites inherits the outer session's run dir; releasing it would delete the cluster
    under the outer session's tests (it did, once self-tests and suites shared xdist workers)."""
    cache = tmp_path / "cache"
    outer = run_dir(tmp_path, "dkc-run-outer")
    users = session.Registry(cache / "sessions" / "local-dkc")
    users.join(outer.name, os.getpid())
    users.mark_created()
    env = {**os.environ, "DKC_CACHE_DIR": str(cache), "DKC_STATE_DIR": str(tmp_path / "state"),
           session.RUN_DIR_ENV: str(outer)}
    done = subprocess.run([sys.executable, "-m", "pytest", "suites", "-q", "-p", "no:cacheprovider", "-m", "smoke",
                           "-k", "no-such-test"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 5, done.stdout + done.stderr  # nothing selected: the session ends at once
    assert users.live() == [outer.name], "the inner session took the outer one off its cluster"
    assert users.created_by_a_session()
    assert "Deleting local cluster" not in done.stdout + done.stderr
