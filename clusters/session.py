"""One cluster per test session, shared by every pytest-xdist worker and by concurrent sessions.

Workers acquire the cluster under a file lock (the first creates it, the rest reuse it). Every session using a
cluster is registered next to that lock (``<cache>/sessions/<provider>-<name>/session-<id>``, holding the pid of
the session's controlling process), and a cluster a session created is marked there. The controlling process
releases at session end, after every worker is done: the last session out deletes a cluster that a session
created, unless ``--keep``; a cluster that existed before any session (``dkc up``) is never deleted by one.
A session killed outright (SIGKILL) no longer counts once its process is gone.

Tests share the cluster (``Use.shared``), those of every worker and session at once; a test whose fault hits the
whole cluster (stopping its apiserver) has it to itself (``Use.alone``): it waits until the tests beside it end,
and none starts until it is done.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from clusters import ClusterInfo, Provider, ProviderOptions, get_provider
from common.progress import say
from images.cache import cache_root

RUN_DIR_ENV = "DKC_RUN_DIR"
CONTROLLER_PID = "controller.pid"  # in the run dir: the process that ends the session (xdist's controller)


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _start_time(pid: int) -> str | None:
    """The process's start time (clock ticks since boot) where /proc tells it: a reused pid is another process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(pid: int, start_time: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process, but alive
    return start_time is None or _start_time(pid) in (None, start_time)


@dataclass(frozen=True)
class Registry:
    """Which sessions use one cluster, and whether a session created it."""

    path: Path

    @property
    def _created(self) -> Path:
        return self.path / "created-by-a-session"

    def join(self, session: str, pid: int) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / f"session-{session}").write_text(f"{pid} {_start_time(pid) or '-'}\n")

    def leave(self, session: str) -> None:
        (self.path / f"session-{session}").unlink(missing_ok=True)

    def live(self) -> list[str]:
        """The sessions whose controlling process still runs; entries of dead ones are removed."""
        found = []
        for entry in sorted(self.path.glob("session-*")):
            try:
                pid_text, start = entry.read_text().split()
            except (OSError, ValueError):
                continue
            if _alive(int(pid_text), None if start == "-" else start):
                found.append(entry.name.removeprefix("session-"))
            else:
                entry.unlink(missing_ok=True)
        return found

    def mark_created(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        self._created.touch()

    def created_by_a_session(self) -> bool:
        return self._created.exists()

    def forget_creation(self) -> None:
        self._created.unlink(missing_ok=True)


def registry(kind: str, options: ProviderOptions) -> Registry:
    return Registry(cache_root() / "sessions" / f"{kind}-{options.name}")


def _lock(kind: str, options: ProviderOptions) -> Path:
    return cache_root() / "locks" / f"{kind}-{options.name}.lock"


def session_of(run_dir: Path) -> tuple[str, int]:
    """The session's id (its run dir's name) and the pid of the process that will release it."""
    pid_file = run_dir / CONTROLLER_PID
    pid = int(pid_file.read_text()) if pid_file.exists() else os.getpid()
    return run_dir.name, pid


def acquire(kind: str, options: ProviderOptions, run_dir: Path | None) -> tuple[Provider, ClusterInfo]:
    """A ready cluster and its provider; registers the session (``run_dir``) as a user, and marks the cluster
    as made by a session if this call created it."""
    provider = get_provider(kind, options)
    users = registry(kind, options)
    with file_lock(_lock(kind, options)):
        existed = provider.status().healthy
        info = provider.create()
        if run_dir is not None:
            users.join(*session_of(run_dir))
            if not existed and info.created_by_us:
                users.mark_created()
    return provider, info


def release(kind: str, options: ProviderOptions, run_dir: Path) -> None:
    """The session leaves the cluster. The last session out deletes a cluster that a session created, unless
    ``--keep`` (which keeps it for good: no later session deletes it either)."""
    users = registry(kind, options)
    session, _ = session_of(run_dir)
    with file_lock(_lock(kind, options)):
        joined = (users.path / f"session-{session}").exists()
        users.leave(session)
        if not joined or not users.created_by_a_session():
            return
        if options.keep:
            users.forget_creation()
            say(f"  --keep: cluster {options.name} stays; remove it with `dkc down --name {options.name}`")
            return
        others = users.live()
        if others:
            say(f"  cluster {options.name} is still used by {len(others)} other session(s): the last one out "
                "deletes it")
            return
        get_provider(kind, options).delete()
        users.forget_creation()


def adopt(kind: str, options: ProviderOptions) -> None:
    """``dkc up`` / ``dkc down``: the user now owns the cluster (or removed it); no session deletes it later."""
    with file_lock(_lock(kind, options)):
        registry(kind, options).forget_creation()


class Use:
    """A readers-writer lock on one cluster across processes: flock(2) on two files next to the cluster's lock.
    A test waiting to be alone holds the turnstile, so the tests that would start meanwhile queue behind it
    instead of keeping the cluster busy forever. A process's shared holds nest (one flock per process)."""

    def __init__(self, path: Path) -> None:
        self.turnstile, self.lock = path.with_suffix(".turnstile"), path.with_suffix(".use")
        self._shared_depth = 0
        self._shared_handle: IO[str] | None = None

    @contextmanager
    def shared(self) -> Iterator[None]:
        if self._shared_depth == 0:
            with file_lock(self.turnstile):
                pass  # through the turnstile: not past a test waiting to be alone
            self._shared_handle = _locked(self.lock, fcntl.LOCK_SH)
        self._shared_depth += 1
        try:
            yield
        finally:
            self._shared_depth -= 1
            if self._shared_depth == 0 and self._shared_handle is not None:
                self._shared_handle.close()  # closing the file releases its flock
                self._shared_handle = None

    @contextmanager
    def alone(self, waiting: str) -> Iterator[None]:
        """The cluster to itself; ``waiting`` is said when other tests hold it (they end first)."""
        if self._shared_depth:
            raise RuntimeError("a test cannot be alone on the cluster while this process shares it")
        with file_lock(self.turnstile):
            handle = _try_locked(self.lock, fcntl.LOCK_EX)
            if handle is None:
                say(waiting)
                handle = _locked(self.lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            handle.close()


def _locked(path: Path, operation: int) -> IO[str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a")
    try:
        fcntl.flock(handle, operation)
    except BaseException:
        handle.close()
        raise
    return handle


def _try_locked(path: Path, operation: int) -> IO[str] | None:
    try:
        return _locked(path, operation | fcntl.LOCK_NB)
    except BlockingIOError:
        return None


_USES: dict[Path, Use] = {}


def cluster_use(kind: str, options: ProviderOptions) -> Use:
    """The one ``Use`` of this process for the cluster (so that its shared holds nest)."""
    path = _lock(kind, options)
    return _USES.setdefault(path, Use(path))


def run_dir_from_env() -> Path | None:
    value = os.environ.get(RUN_DIR_ENV)
    return Path(value) if value else None
