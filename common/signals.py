"""Ctrl-C and SIGTERM end a test session the way a normal end does: what it made is removed, unless ``--keep``.

pytest turns SIGINT into KeyboardInterrupt and then tears its fixtures down; SIGTERM would kill it on the spot,
so both get one handler here. The rules, in every pytest process of a session:

- the first SIGINT or SIGTERM interrupts; every later one (Ctrl-C pressed again, or the same signal reaching
  the process twice: from the terminal and forwarded by ``dkc``) only says that cleanup is under way;
- a signal during cleanup (``shielded``: the end of a session) never cuts it short;
- an xdist controller does not raise while its workers run: it stops xdist (no new tests) and passes SIGINT to
  each worker, which ends its session and tears its deployments down; the controller then releases the
  cluster. Raising there instead kills the workers 10 s later, in the middle of their teardown.
"""

from __future__ import annotations

import _thread
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sys import UnraisableHookArgs

ECHO_SECONDS = 2.0
REDELIVER_SECONDS = 0.05
WORKER_PID_PREFIX = "worker-"  # in the run dir: worker-<xdist id>.pid, for the controller to signal


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


class Interrupts:
    """The state of one process: whether it was interrupted, and whether cleanup is running."""

    def __init__(self, say: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self.received: int | None = None
        self._received_at = 0.0
        self._clock = clock
        self._pid = os.getpid()
        self._redeliver = False
        self.shielding = 0
        self._say = say or (lambda line: print(line, file=sys.stderr, flush=True))
        # When set: how to stop without raising (an xdist controller whose workers are running).
        self.stop_without_raising: Callable[[int], bool] | None = None

    def handle(self, signum: int, frame: FrameType | None = None) -> None:
        if os.getpid() != self._pid:
            return  # a forked child between fork and exec (subprocess with preexec_fn): not ours to stop
        if self._redeliver:  # the first KeyboardInterrupt was swallowed (see _swallowed): raise it again
            self._redeliver = False
            if not self.shielding:
                raise KeyboardInterrupt
            return
        now = self._clock()
        if self.received is not None or self.shielding:
            # The same signal again at once is one Ctrl-C reaching us twice (terminal and dkc): nothing to say.
            if not (signum == self.received and now - self._received_at < ECHO_SECONDS):
                self._say(f"dkc: {signal_name(signum)}: already cleaning up what this session made, please wait "
                          f"(kill -9 {os.getpid()} leaves it behind: then `./dkc down`)")
            self.received = self.received or signum
            return
        self.received, self._received_at = signum, now
        self._say(f"dkc: {signal_name(signum)}: interrupted; removing what this session made")
        if self.stop_without_raising and self.stop_without_raising(signum):
            return
        raise KeyboardInterrupt

    @contextmanager
    def shielded(self) -> Iterator[None]:
        """Cleanup that a signal must not cut short."""
        self.shielding += 1
        try:
            yield
        finally:
            self.shielding -= 1

    def install(self) -> None:
        """Handle SIGTERM, and SIGINT unless it is ignored (started in the background with `&`: left so)."""
        self._pid = os.getpid()
        signal.signal(signal.SIGTERM, self.handle)
        if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
            signal.signal(signal.SIGINT, self.handle)
        previous = sys.unraisablehook

        def hook(unraisable: UnraisableHookArgs) -> None:
            self._swallowed(unraisable)
            previous(unraisable)

        sys.unraisablehook = hook

    def _swallowed(self, unraisable: UnraisableHookArgs) -> None:
        """A signal handled where exceptions are ignored (seen: logging's at-fork callback right after a subprocess
        with preexec_fn was forked) loses its KeyboardInterrupt, and the session ran on: deliver it again."""
        if unraisable.exc_type is KeyboardInterrupt and self.received is not None and os.getpid() == self._pid:
            self._redeliver = True
            # A moment later, from another thread: at once it would be handled here again, and ignored again.
            retry = threading.Timer(REDELIVER_SECONDS, _thread.interrupt_main, args=(self.received,))
            retry.daemon = True
            retry.start()


def worker_pids(run_dir: Path) -> list[int]:
    pids = []
    for entry in run_dir.glob(f"{WORKER_PID_PREFIX}*.pid"):
        with suppress(OSError, ValueError):
            pids.append(int(entry.read_text()))
    return pids


def signal_all(pids: Iterable[int], signum: int = signal.SIGINT) -> list[int]:
    """Send ``signum`` to each process still there; returns those it reached."""
    reached = []
    for pid in pids:
        with suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
            reached.append(pid)
    return reached


class SessionSignals:
    """The pytest plugin: installs the handler, shields the end of the session, and under xdist lets the controller
    stop its workers instead of raising."""

    def __init__(self, config: pytest.Config, run_dir: Path | None, interrupts: Interrupts | None = None) -> None:
        self.config, self.run_dir = config, run_dir
        self.interrupts = interrupts or Interrupts()
        worker = getattr(config, "workerinput", {}).get("workerid")
        if worker and run_dir is not None:
            (run_dir / f"{WORKER_PID_PREFIX}{worker}.pid").write_text(str(os.getpid()))
        if not worker:
            self.interrupts.stop_without_raising = self._stop_xdist
        self.interrupts.install()

    def _stop_xdist(self, signum: int) -> bool:
        """In an xdist controller whose test loop runs: no new tests, and each worker interrupted (it then tears
        its deployments down and reports back, and the loop ends). False: not in that loop, raise as usual."""
        dsession = self.config.pluginmanager.getplugin("dsession")
        if dsession is None or getattr(dsession, "sched", None) is None or self.run_dir is None:
            return False
        dsession.shouldstop = f"interrupted by {signal_name(signum)}"
        signal_all(worker_pids(self.run_dir))
        return True

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_sessionfinish(self) -> Iterator[None]:
        # Fixture teardown (deployments, namespaces) and the cluster's release all run inside this hook.
        with self.interrupts.shielded():
            yield
