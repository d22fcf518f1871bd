"""What a local cluster makes on the host, and how it is found and removed again.

A cluster owns exactly these things, all named after it:
- a network namespace per node (``/run/netns/dkc-<name>``) joined to the host by one veth pair,
  with no default route: nothing inside can reach any address outside this machine;
- a mount namespace (``<run dir>/mnt``): every mount containerd and the kubelet make stays in it
  and disappears with it;
- a cgroup ``/dkc-<name>`` in every hierarchy: every process of the cluster, pods included;
- a state directory and a run directory.
``leftovers`` lists whichever of these still exist; ``sweep`` removes them in reverse order.
"""

from __future__ import annotations

import ctypes
import errno
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from clusters.errors import ClusterError, PreflightError
from clusters.local.config import Component
from clusters.local.topology import Node, Topology

T = TypeVar("T")
CLONE_NEWNET = 0x40000000  # <sched.h>
CGROUP_ROOT = Path("/sys/fs/cgroup")
REQUIRED_TOOLS = {
    "ip": "iproute2", "nsenter": "util-linux", "unshare": "util-linux", "mount": "mount",
    "iptables": "iptables", "conntrack": "conntrack", "socat": "socat", "containerd": "containerd",
    "runc": "runc", "ctr": "containerd",
}


def run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} failed: {proc.stderr.strip().splitlines()[-1:] or proc.returncode}")
    return proc


def preflight() -> None:
    if os.geteuid() != 0:
        raise PreflightError("the local provider needs root (network namespaces, cgroups, mounts): rerun with sudo")
    missing = sorted({pkg for tool, pkg in REQUIRED_TOOLS.items() if shutil.which(tool) is None})
    if not Path("/usr/lib/cni/bridge").exists():
        missing.append("containernetworking-plugins")
    if missing:
        raise PreflightError(f"missing Debian packages: {', '.join(missing)}: apt-get install {' '.join(missing)}")


# -- network namespace ---------------------------------------------------------------------------

def netns_path(node: Node) -> Path:
    return Path("/run/netns") / node.netns


def call_in_netns(node: Node, call: Callable[[], T]) -> T:
    """``call()`` on a thread of its own that first joins the node's network namespace (setns is per thread), so
    the sockets it opens reach pod IPs, which only the nodes route; the thread ends with the call."""
    outcome: dict[str, Any] = {}

    def joined() -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        with open(netns_path(node)) as netns:
            if libc.setns(netns.fileno(), CLONE_NEWNET) != 0:
                outcome["error"] = OSError(ctypes.get_errno(), f"cannot join {netns_path(node)}")
                return
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    thread = threading.Thread(target=joined, name=f"in-{node.netns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def in_netns(node: Node, argv: list[str]) -> list[str]:
    # Not `ip netns exec`: it remounts /sys, which hides the cgroup mounts from the kubelet.
    return ["nsenter", f"--net={netns_path(node)}", "--", *argv]


def host_address_owner(ip: str) -> str | None:
    """The host interface that already has ``ip``, if any."""
    for line in run(["ip", "-o", "-4", "addr", "show"]).stdout.splitlines():
        fields = line.split()
        if len(fields) > 3 and fields[3].split("/")[0] == ip:
            return fields[1]
    return None


def create_netns(node: Node) -> None:
    owner = host_address_owner(node.host_ip)
    if owner is not None and owner != node.veth_host:
        raise PreflightError(f"address {node.host_ip} is already used by interface {owner}; "
                             "pick another cluster --name")
    run(["ip", "netns", "add", node.netns])
    run(["ip", "link", "add", node.veth_host, "type", "veth", "peer", "name", "eth0", "netns", node.netns])
    run(["ip", "addr", "add", f"{node.host_ip}/30", "dev", node.veth_host])
    run(["ip", "link", "set", node.veth_host, "up"])
    for argv in (["ip", "link", "set", "lo", "up"],
                 ["ip", "addr", "add", f"{node.ip}/30", "dev", "eth0"],
                 ["ip", "link", "set", "eth0", "up"]):
        run(in_netns(node, argv))
    # Per-namespace switches kube-proxy and the bridge CNI need; no default route is ever added.
    for key in ("net/ipv4/ip_forward", "net/bridge/bridge-nf-call-iptables", "net/ipv4/conf/all/route_localnet"):
        run(in_netns(node, ["sh", "-c", f"echo 1 > /proc/sys/{key}"]))


def delete_netns(node: Node) -> None:
    if netns_path(node).exists():
        run(["ip", "netns", "del", node.netns], check=False)
    if Path(f"/sys/class/net/{node.veth_host}").exists():
        run(["ip", "link", "del", node.veth_host], check=False)


# -- mount namespace -----------------------------------------------------------------------------

def create_mount_ns(topology: Topology) -> None:
    """A persistent mount namespace, slave to the host: host mounts come in, ours never leak out."""
    run_dir = topology.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    # A namespace file may only be bind-mounted onto a private mount.
    run(["mount", "--bind", str(run_dir), str(run_dir)])
    run(["mount", "--make-private", str(run_dir)])
    topology.mount_ns_file.touch()
    run(["unshare", f"--mount={topology.mount_ns_file}", "--propagation", "slave", "true"])


def mounts_under(*roots: Path) -> list[str]:
    """Mount points on the host under any of ``roots``, deepest first."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == str(r) or point.startswith(str(r) + "/") for r in roots):
            found.append(point)
    return sorted(set(found), key=len, reverse=True)


def delete_mount_ns(topology: Topology) -> None:
    for point in mounts_under(topology.run_dir, topology.state_dir):
        run(["umount", "-l", point], check=False)


# -- cgroups -------------------------------------------------------------------------------------

def cgroup_hierarchies() -> list[Path]:
    """The writable cgroup hierarchies: each v1 controller directory, or the single v2 tree."""
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        return [CGROUP_ROOT]
    return sorted(p for p in CGROUP_ROOT.iterdir() if p.is_dir() and not p.is_symlink()
                  and (p / "cgroup.procs").exists())


def create_cgroups(topology: Topology) -> None:
    for hierarchy in cgroup_hierarchies():
        path = hierarchy / topology.cgroup
        path.mkdir(exist_ok=True)
        # A v1 cpuset cgroup takes no process until it has cpus and mems of its own.
        for knob in ("cpuset.cpus", "cpuset.mems"):
            if (path / knob).exists() and not (path / knob).read_text().strip():
                (path / knob).write_text((hierarchy / knob).read_text())


def cgroup_dirs(topology: Topology) -> list[Path]:
    """Every cgroup directory of the cluster, deepest first."""
    found: list[Path] = []
    for hierarchy in cgroup_hierarchies():
        top = hierarchy / topology.cgroup
        if top.is_dir():
            found += [Path(dirpath) for dirpath, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def cgroup_pids(topology: Topology) -> set[int]:
    pids: set[int] = set()
    for directory in cgroup_dirs(topology):
        try:
            pids |= {int(x) for x in (directory / "cgroup.procs").read_text().split()}
        except OSError as exc:
            # a pod's cgroup removed while it is read: gone (ENOENT), or half-removed (ENODEV on cgroup v1)
            if exc.errno not in (errno.ENOENT, errno.ESRCH, errno.ENODEV):
                raise
            continue
    return pids


def _join_cgroup(topology: Topology) -> None:
    """Runs in the child between fork and exec: move it into the cluster's cgroups."""
    for hierarchy in cgroup_hierarchies():
        (hierarchy / topology.cgroup / "cgroup.procs").write_text(str(os.getpid()))


def remove_cgroups(topology: Topology) -> None:
    for directory in cgroup_dirs(topology):
        try:
            directory.rmdir()
        except OSError:
            continue


# -- processes -----------------------------------------------------------------------------------

def spawn(topology: Topology, node: Node, component: Component, log_dir: Path) -> int:
    """Start a component inside the node's network and mount namespaces and the cluster's cgroup."""
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = ["nsenter", f"--net={netns_path(node)}", f"--mount={topology.mount_ns_file}", "--", *component.argv]
    with (log_dir / f"{component.name}.log").open("ab") as log:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, **(component.env or {})}, start_new_session=True,
            preexec_fn=lambda: _join_cgroup(topology),
        )
    return proc.pid


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def stray_pids(topology: Topology) -> set[int]:
    """Processes that name the cluster's directories but escaped its cgroup (e.g. moved by hand)."""
    marks = (str(topology.state_dir) + "/", str(topology.run_dir) + "/")
    own = os.getpid()
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != own and any(m in _cmdline(int(entry.name)) for m in marks):
            found.add(int(entry.name))
    return found


def component_pids(topology: Topology, binary: str) -> set[int]:
    """Processes of the cluster running ``binary`` (matched by file name)."""
    name = Path(binary).name
    return {pid for pid in cgroup_pids(topology) if Path(_cmdline(pid).split(" ", 1)[0]).name == name}


def component_running(topology: Topology, component: Component) -> bool:
    return bool(component_pids(topology, component.argv[0]))


def kill_all(topology: Topology, deadline_seconds: float = 15.0) -> None:
    """SIGKILL every process of the cluster until none is left (a dead shim can leave children behind)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        pids = cgroup_pids(topology) | stray_pids(topology)
        if not pids:
            return
        if time.monotonic() > deadline:
            raise ClusterError(f"processes {sorted(pids)[:10]} of cluster {topology.name} survived SIGKILL; "
                               "check `ps -o pid,stat,cmd -p <pid>` for processes stuck in D state")
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        time.sleep(0.1)  # poll: let the kernel reap before listing again


# -- the whole picture ---------------------------------------------------------------------------

def leftovers(topology: Topology) -> list[str]:
    """Everything of the cluster still present on the host, each as one readable line."""
    found = [f"process {pid}: {_cmdline(pid)[:80]}" for pid in sorted(cgroup_pids(topology) | stray_pids(topology))]
    for node in topology.nodes:
        if netns_path(node).exists():
            found.append(f"network namespace {node.netns}")
        if Path(f"/sys/class/net/{node.veth_host}").exists():
            found.append(f"host interface {node.veth_host}")
    found += [f"mount {point}" for point in mounts_under(topology.run_dir, topology.state_dir)]
    found += [f"cgroup {d}" for d in cgroup_dirs(topology)]
    found += [f"directory {d}" for d in (topology.state_dir, topology.run_dir) if d.exists()]
    return found


def sweep(topology: Topology) -> None:
    """Remove everything the cluster made, whatever state a killed run left it in."""
    kill_all(topology)
    delete_mount_ns(topology)
    remove_cgroups(topology)
    for node in topology.nodes:
        delete_netns(node)
    _remove_container_log_links(topology)
    for directory in (topology.run_dir, topology.state_dir):
        shutil.rmtree(directory, ignore_errors=True)


def _remove_container_log_links(topology: Topology) -> None:
    """The kubelet links /var/log/containers/* to pod logs; drop the links that point into our state."""
    links = Path("/var/log/containers")
    if not links.is_dir():
        return
    for link in links.iterdir():
        if link.is_symlink() and os.readlink(link).startswith(str(topology.state_dir) + "/"):
            link.unlink(missing_ok=True)


def iter_logs(topology: Topology) -> Iterator[Path]:
    yield from sorted((topology.state_dir / "logs").glob("*.log"))
