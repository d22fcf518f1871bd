"""Steps inside a Debian root filesystem: debootstrap, apt-get and pip in a chroot, run as root and logged.

Every step runs with /proc, /sys and /dev mounted; the mounts are always removed again, also when a step fails
or the user presses Ctrl-C, and a tree that still holds a mount is never deleted (a bind-mounted /dev would
take the host's device nodes with it). pip inherits this machine's pip configuration (index, CA bundle,
find-links).
"""


import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from common.errors import BuildError, PreflightError
from common.progress import say
from images.apt_sources import SUITE, host_mirror
from images.cache import cache_root

HEARTBEAT_SECONDS = 30.0
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Where pip's host-side files (CA bundle, local find-links) appear inside the chroot during a build.
PIP_STAGING = "/tmp/dkc-pip"
# A service started by a package's postinst would run on the build host: refuse every start.
POLICY_RC_D = b"#!/bin/sh\n# dkc image build: start no services\nexit 101\n"
# Left out of every layer: build-time state and caches that only grow the image.
CLEAN_PATHS = (
    "var/cache/apt", "var/lib/apt/lists", "var/log/apt", "var/log/dpkg.log", "var/cache/debconf/templates.dat-old",
    "root/.cache", "tmp", "var/tmp",
)


def preflight() -> None:
    """Root and debootstrap are needed before any step can run; say so in one line."""
    if os.geteuid() != 0:
        raise PreflightError("building Debian root filesystems needs root (debootstrap, chroot, mount): "
                             "run as root")
    for tool, package in (("debootstrap", "debootstrap"), ("chroot", "coreutils"), ("mount", "mount"),
                          ("tar", "tar")):
        if shutil.which(tool) is None:
            raise PreflightError(f"{tool} is not installed: apt-get install {package} and retry")



# --- running steps -----------------------------------------------------------------------------


def _last_line(log: Path) -> str:
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - 4096))
            lines = [line.strip() for line in handle.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:140] if lines else ""


def _stop_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the step's process group; after the step ends (or 10 s), SIGKILL to whatever of
    the group is left (a dpkg its apt-get left behind)."""
    with suppress(ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    with suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_logged(argv: list[str], log: Path, what: str, env: Mapping[str, str] | None = None) -> None:
    """Run one build step, its output appended to ``log``; print a heartbeat with the step's latest
    output line every HEARTBEAT_SECONDS so a long step visibly makes progress.

    A failure raises BuildError naming the step, its last output line and the log. The step runs in
    a process group of its own; on any exception, Ctrl-C included, the whole group (apt's dpkg, pip's
    builds) is stopped before the exception propagates, so nothing keeps writing in the tree.
    """
    started = time.monotonic()
    with log.open("a") as out:
        out.write(f"\n$ {shlex.join(argv)}\n")
        out.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                env=dict(env) if env is not None else None, start_new_session=True)
        try:
            while True:
                try:
                    code = proc.wait(timeout=HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    say(f"    … {what}: {time.monotonic() - started:.0f}s, {_last_line(log)}")
        except BaseException:
            _stop_group(proc)
            raise
    if code != 0:
        raise BuildError(f"{what} failed (exit {code}): {_last_line(log)}; full log: {log}")


def chroot_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A clean environment for commands in the chroot: nothing of the host's (CA paths, proxies' files)
    leaks in except what a step passes on purpose."""
    env = {"PATH": CHROOT_PATH, "HOME": "/root", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    env.update(extra or {})
    return env


# --- mounts ------------------------------------------------------------------------------------


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or below ``root``, deepest first (the order to unmount them)."""
    resolved = str(root.resolve())
    found = []
    with open("/proc/self/mountinfo") as info:
        for line in info:
            point = line.split()[4].encode().decode("unicode_escape")  # \040 for spaces, etc.
            if point == resolved or point.startswith(resolved + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _unmount(point: Path) -> None:
    if subprocess.run(["umount", str(point)], capture_output=True).returncode != 0:
        # Still busy (a process killed by Ctrl-C may linger a moment): detach it now, freed when idle.
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def unmount_all(root: Path) -> None:
    """Remove every mount under ``root``; a BuildError if one cannot be removed."""
    for point in mounts_under(root):
        _unmount(point)
    left = mounts_under(root)
    if left:
        raise BuildError(f"cannot unmount {left[0]}: unmount it by hand (umount -l {left[0]}) and retry")


def remove_tree(root: Path) -> None:
    """Delete a build tree, but only once nothing is mounted in it."""
    if not root.exists():
        return
    unmount_all(root)
    shutil.rmtree(root)


def discard(root: Path) -> None:
    """remove_tree for ``finally`` blocks: a tree that cannot be removed is reported, never raised over
    the error that is already on its way (and it is removed before the next build of it starts)."""
    try:
        remove_tree(root)
    except (BuildError, OSError) as exc:
        say(f"  left {root} in place: {exc}")


def inside(root: Path, path: str) -> Path:
    """``path`` of the chroot as a host path, refusing one that a symlink leads out of ``root``
    (an absolute link in the chroot names a host file: writing through it would change the host)."""
    target = root / path.strip("/")
    if target.is_symlink():
        target.unlink()
    real_root = root.resolve()
    if target.parent.resolve() != real_root and real_root not in target.parent.resolve().parents:
        raise BuildError(f"{path} leads out of the build tree {root}: refusing to write it")
    return target


def _put_host_resolver(root: Path) -> None:
    """The host's resolv.conf in the chroot, so apt and pip there can resolve the mirror and index."""
    shutil.copy("/etc/resolv.conf", inside(root, "/etc/resolv.conf"))


@contextmanager
def _sigterm_raises() -> Iterator[None]:
    """While mounts are held, SIGTERM (a CI timeout, a plain ``kill``) raises instead of ending the
    process on the spot, so the ``finally`` blocks that unmount run. Ctrl-C already raises."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise BuildError("build stopped by SIGTERM")

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def mounted(root: Path, binds: Mapping[Path, str] | None = None) -> Iterator[None]:
    """/proc, /sys and /dev (and ``binds``: host dir -> read-only path in the chroot) mounted in ``root``
    for the duration; always unmounted afterwards, whatever happened."""
    plan: list[tuple[list[str], str]] = [
        (["-t", "proc", "proc"], "proc"),
        (["-t", "sysfs", "sysfs"], "sys"),
        (["--bind", "/dev"], "dev"),
        (["--bind", "/dev/pts"], "dev/pts"),
    ]
    plan += [(["--bind", str(host)], where.strip("/")) for host, where in (binds or {}).items()]
    with _sigterm_raises():
        try:
            for args, where in plan:
                (root / where).parent.mkdir(parents=True, exist_ok=True)
                target = inside(root, where)  # never mount over a symlink that leads out of the tree
                target.mkdir(exist_ok=True)
                proc = subprocess.run(["mount", *args, str(target)], capture_output=True, text=True)
                if proc.returncode != 0:
                    raise BuildError(f"mount {args[-1]} on {target} failed: {proc.stderr.strip()}")
                if args[0] == "--bind" and where not in ("dev", "dev/pts"):
                    subprocess.run(["mount", "-o", "remount,bind,ro", str(target)], capture_output=True)
            yield
        finally:
            unmount_all(root)


# --- steps -------------------------------------------------------------------------------------


def _apt_options() -> list[str]:
    """The host's apt settings a chroot needs to reach the same mirror (proxy, validity checks)."""
    keys = ("Acquire::http::Proxy", "Acquire::https::Proxy", "Acquire::Check-Valid-Until")
    options = []
    for key in keys:
        proc = subprocess.run(["apt-config", "shell", "V", key], capture_output=True, text=True)
        match = re.match(r"V='(.*)'", proc.stdout.strip())
        if proc.returncode == 0 and match and match.group(1):
            options += ["-o", f"{key}={match.group(1)}"]
    return options


def debootstrap(target: Path, mirror: str, log: Path) -> None:
    """``debootstrap --variant=minbase`` of SUITE into ``target``."""
    say(f"  debootstrap --variant=minbase {SUITE} (about a minute; log {log})")
    run_logged(["debootstrap", "--variant=minbase", SUITE, str(target), mirror], log, "debootstrap")


def apt_install(root: Path, packages: Sequence[str], log: Path) -> None:
    """apt-get install ``packages`` (no recommends) in the chroot, then drop apt's caches.

    The chroot's sources are rewritten with this machine's mirror first: the cached minbase may
    have been bootstrapped from another one."""
    if not packages:
        return
    inside(root, "/etc/apt/sources.list").write_text(f"deb {host_mirror()} {SUITE} main\n")
    policy = inside(root, "/usr/sbin/policy-rc.d")
    policy.write_bytes(POLICY_RC_D)
    policy.chmod(0o755)
    _put_host_resolver(root)
    apt = ["chroot", str(root), "apt-get", *_apt_options(), "-o", "Dpkg::Options::=--force-unsafe-io",
           "-o", "Dpkg::Options::=--force-confold"]
    try:
        with mounted(root):
            say("  apt-get update")
            run_logged([*apt, "update"], log, "apt-get update", chroot_env())
            say(f"  apt-get install {' '.join(packages)}")
            run_logged([*apt, "install", "-y", "--no-install-recommends", *packages], log,
                       "apt-get install", chroot_env())
            run_logged([*apt, "clean"], log, "apt-get clean", chroot_env())
    finally:
        policy.unlink(missing_ok=True)


def pip_environment(config_list: str, environ: Mapping[str, str]) -> dict[str, str]:
    """PIP_* variables reproducing the host's pip configuration (``pip config list`` output plus the
    environment; the environment wins, as in pip itself). Paths are still host paths here."""
    settings: dict[str, str] = {}
    for line in config_list.splitlines():
        match = re.match(r"^(global|install|download|:env:)\.([\w-]+)='(.*)'$", line.strip())
        if match and (match.group(1) != ":env:"):
            settings[match.group(2)] = match.group(3)
    for name, value in environ.items():
        if name.startswith("PIP_"):
            settings[name[4:].lower().replace("_", "-")] = value
    return {"PIP_" + key.upper().replace("-", "_"): value for key, value in settings.items()}


def _host_pip_settings() -> dict[str, str]:
    proc = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
    return pip_environment(proc.stdout if proc.returncode == 0 else "", os.environ)


def chroot_pip_environment(root: Path, host: Mapping[str, str]) -> tuple[dict[str, str], dict[Path, str]]:
    """Rewrite the host's PIP_* settings for use inside ``root``: the CA bundle (and client
    certificate) are copied in, local find-links directories are bind-mounted read-only.

    Returns (environment, binds host dir -> path in chroot).
    """
    env = dict(host)
    binds: dict[Path, str] = {}
    staging = root / PIP_STAGING.strip("/")
    staging.mkdir(parents=True, exist_ok=True)
    for name in ("PIP_CERT", "PIP_CLIENT_CERT"):
        if env.get(name) and Path(env[name]).is_file():
            shutil.copy(env[name], staging / name.lower())
            env[name] = f"{PIP_STAGING}/{name.lower()}"
    if env.get("PIP_FIND_LINKS"):
        links = []
        for index, link in enumerate(env["PIP_FIND_LINKS"].split()):
            local = Path(link[7:] if link.startswith("file://") else link)
            if local.is_dir():
                inside = f"{PIP_STAGING}/find-links-{index}"
                binds[local] = inside
                links.append(inside)
            elif "://" in link:
                links.append(link)
        env["PIP_FIND_LINKS"] = " ".join(links)
        if not links:
            del env["PIP_FIND_LINKS"]
    for name in ("PIP_LOG", "PIP_LOG_FILE", "PIP_CACHE_DIR", "PIP_REQUIREMENT", "PIP_CONSTRAINT", "PIP_CONFIG_FILE"):
        env.pop(name, None)  # host paths that mean nothing in the chroot
    env.update(PIP_NO_CACHE_DIR="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env, binds


def pip_install(rootfs: Path, venv_path: str, requirements: Sequence[str], log: Path | None = None) -> None:
    """Create a venv at ``venv_path`` inside ``rootfs`` with the chroot's own python3 (so the image's
    interpreter and the venv match) and pip-install ``requirements`` into it, through this machine's
    pip configuration. ``pip freeze`` is kept in the venv as requirements.lock for the record."""
    log = log or cache_root() / "logs" / f"pip-{rootfs.name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    venv = venv_path.rstrip("/")
    env, binds = chroot_pip_environment(rootfs, _host_pip_settings())
    _put_host_resolver(rootfs)
    chroot = ["chroot", str(rootfs)]
    try:
        with mounted(rootfs, binds):
            say(f"  python3 -m venv {venv}")
            run_logged([*chroot, "python3", "-m", "venv", venv], log, "python3 -m venv", chroot_env())
            say(f"  pip install {' '.join(requirements)} (a minute or two; log {log})")
            run_logged([*chroot, f"{venv}/bin/pip", "install", *requirements], log, "pip install",
                       chroot_env(env))
            freeze = subprocess.run([*chroot, f"{venv}/bin/pip", "freeze"], capture_output=True, text=True,
                                    env=chroot_env(env))
            (rootfs / venv.strip("/") / "requirements.lock").write_text(freeze.stdout)
    finally:
        staging = rootfs / PIP_STAGING.strip("/")
        if not mounts_under(staging):
            shutil.rmtree(staging, ignore_errors=True)


def scrub(root: Path) -> None:
    """Leave out of the layer what only the build needed: apt's caches and lists, temporary files,
    the host's resolver and name (the kubelet provides both to every container)."""
    for relative in CLEAN_PATHS:
        path = root / relative
        if path.is_dir() and not path.is_symlink():
            for child in path.iterdir():
                if child.is_dir() and not child.is_symlink():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        elif path.exists():
            path.unlink()
    (root / "var/lib/apt/lists/partial").mkdir(parents=True, exist_ok=True)
    (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
    inside(root, "/etc/resolv.conf").write_text("")
    inside(root, "/etc/hostname").write_text("localhost\n")


