"""The Docker engine the kind provider runs on: the user's when one answers, else Debian's dockerd started by us.

A dockerd we start is made for this machine and this suite:
- an OCI runtime shim (clusters/kind/runc_shim.py) as the default runtime where the machine withholds capabilities
  from everyone (kind's nodes are ``--privileged``, which runc cannot grant there);
- no masquerading and no upstream DNS (``--dns 127.0.0.1``): nothing in a node reaches past this machine;
- its own data and exec roots under the suite's state directory, and a marker saying we started it, so
  ``dkc down`` stops it again and never stops a dockerd the user runs.

Whichever engine it is, the network kind puts its nodes on is ours (``dkc-kind``) and an iptables rule in
DOCKER-USER drops anything that network forwards anywhere but back into itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from clusters.errors import ClusterError, PreflightError
from clusters.kind import runc_shim
from clusters.local.topology import STATE_ROOT
from common.progress import phase, say
from common.waits import Observation, wait_for

STATE = STATE_ROOT / "docker"
MARKER = STATE / "started-by-dkc"
NETWORK = "dkc-kind"
SHIM_RUNTIME = "dkc-runc"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise ClusterError(f"docker {' '.join(args[:2])} failed: {proc.stderr.strip()[-300:]}")
    return proc


def engine_answers() -> bool:
    return shutil.which("docker") is not None and docker("info", check=False).returncode == 0


def withheld_capabilities() -> set[str]:
    return runc_shim.withheld(Path("/proc/self/status").read_text())


def dockerd_command(dockerd: str, shim: Path | None) -> list[str]:
    argv = [dockerd, "--data-root", str(STATE / "data"), "--exec-root", "/run/dkc-docker",
            "--pidfile", str(STATE / "dockerd.pid"), "--ip-masq=false", "--dns", "127.0.0.1", "--bridge=none"]
    if shim is not None:
        argv += ["--add-runtime", f"{SHIM_RUNTIME}={shim}", "--default-runtime", SHIM_RUNTIME]
    return argv


def _write_shim() -> Path:
    """The shim as a program dockerd can run: the module's own text behind a shebang naming this Python."""
    shim = STATE / "runc-shim"
    shim.write_text(f"#!{sys.executable}\n" + Path(runc_shim.__file__).read_text())
    shim.chmod(0o755)
    return shim


def ensure_engine() -> None:
    """A Docker engine that answers, started now if none does (and only then marked as ours)."""
    if engine_answers():
        return
    dockerd = shutil.which("dockerd")
    if shutil.which("docker") is None or dockerd is None:
        raise PreflightError("no Docker engine answers and dockerd is not installed: start yours, or "
                             "apt-get install docker.io (the kind provider starts it then)")
    STATE.mkdir(parents=True, exist_ok=True)
    shim = _write_shim() if withheld_capabilities() else None
    log = STATE / "dockerd.log"
    with phase(f"Starting dockerd (log {log})"):
        with log.open("ab") as out:
            process = subprocess.Popen(dockerd_command(dockerd, shim), stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True)
        MARKER.write_text(f"{process.pid}\n")

        def answers() -> Observation[None]:
            if process.poll() is not None:
                raise ClusterError(f"dockerd exited with {process.returncode}: {_last_line(log)}")
            return Observation(engine_answers(), f"docker info fails; dockerd log: {_last_line(log)}")

        wait_for("dockerd to answer `docker info`", answers, timeout=60, interval=0.5)


def _last_line(log: Path) -> str:
    lines = log.read_text(errors="replace").strip().splitlines() if log.exists() else []
    return lines[-1][-200:] if lines else "(empty)"


def started_by_us() -> bool:
    return MARKER.exists()


def stop_engine_if_ours() -> None:
    """Stop the dockerd we started (never the user's), once no container is left on it."""
    if not started_by_us():
        return
    if docker("ps", "-aq", check=False).stdout.strip():
        say("  dockerd left running: it still has containers")
        return
    pid = int(MARKER.read_text().split()[0])
    with phase("Stopping the dockerd we started"):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        else:
            wait_for(f"dockerd (pid {pid}) to exit", lambda: Observation(not _alive(pid), f"pid {pid} alive"),
                     timeout=60, interval=0.5)
        remove_docker_chains()
        MARKER.unlink(missing_ok=True)


def docker_rules(listing: str) -> tuple[list[list[str]], list[str]]:
    """From ``iptables -S`` of one table: the rules dockerd put in the built-in chains (to delete, as -D argument
    lists) and its own chains (to flush and delete). dockerd leaves both behind when it stops."""
    rules, chains = [], []
    for line in listing.splitlines():
        words = line.split()
        if words[:1] == ["-N"] and words[1].startswith("DOCKER"):
            chains.append(words[1])
        elif words[:1] == ["-A"] and not words[1].startswith("DOCKER") and any(
                word.startswith("DOCKER") or word == "docker0" for word in words[2:]):
            rules.append(words[1:])
    return rules, chains


def remove_docker_chains() -> None:
    """What a dockerd we started left in iptables (it does not remove its chains on exit)."""
    for table in ("filter", "nat"):
        listing = subprocess.run(["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True).stdout
        rules, chains = docker_rules(listing)
        for rule in rules:
            subprocess.run(["iptables", "-w", "-t", table, "-D", *rule], capture_output=True)
        for action in ("-F", "-X"):
            for chain in chains:
                subprocess.run(["iptables", "-w", "-t", table, action, chain], capture_output=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


# --- the nodes' network and its egress rule ---------------------------------------------------------------------


def bridge_of(network: str) -> str:
    """The Linux bridge behind a Docker bridge network (br-<first 12 of its id>, or its name option)."""
    proc = docker("network", "inspect", network, "-f",
                  '{{.Id}} {{index .Options "com.docker.network.bridge.name"}}')
    network_id, _, name = proc.stdout.strip().partition(" ")
    return name if name and name != "<no value>" else f"br-{network_id[:12]}"


def egress_rule(bridge: str) -> list[str]:
    """DOCKER-USER: what comes in from the nodes' bridge may only go back out into it."""
    return ["DOCKER-USER", "-i", bridge, "!", "-o", bridge, "-j", "DROP"]


def _iptables(action: str, rule: list[str]) -> int:
    return subprocess.run(["iptables", "-w", action, *rule], capture_output=True, text=True).returncode


def ensure_network() -> str:
    """The nodes' network (made if absent) with its egress rule in place; returns its name."""
    if docker("network", "inspect", NETWORK, check=False).returncode != 0:
        docker("network", "create", "--driver", "bridge", NETWORK)
    rule = egress_rule(bridge_of(NETWORK))
    if _iptables("-C", rule) != 0 and _iptables("-I", rule) != 0:
        raise ClusterError(f"cannot add the egress rule `iptables -I {' '.join(rule)}`: is iptables installed?")
    return NETWORK


def remove_network() -> None:
    """The egress rule and the network, once no node is on it."""
    if docker("network", "inspect", NETWORK, check=False).returncode != 0:
        return
    attached = docker("network", "inspect", NETWORK, "-f", "{{len .Containers}}", check=False).stdout.strip()
    if attached not in ("", "0"):
        return
    rule = egress_rule(bridge_of(NETWORK))
    while _iptables("-C", rule) == 0:
        _iptables("-D", rule)
    docker("network", "rm", NETWORK, check=False)
