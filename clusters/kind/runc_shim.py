"""An OCI runtime for Docker on machines that withhold capabilities from everyone (e.g. CAP_SYS_RESOURCE missing
from the bounding set): runc fails a ``--privileged`` container there with "unable to apply caps: operation not
permitted", and kind's nodes are privileged. Registered with ``dockerd --add-runtime``, this drops from the
container's spec the capabilities this machine does not have, and a negative oom_score_adj (that needs
CAP_SYS_RESOURCE), then runs runc with the same arguments.

Standalone on purpose: dockerd runs it as a program (the provider copies it with a shebang naming this Python),
so it imports nothing of the project.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Linux capability numbers (include/uapi/linux/capability.h), as OCI specs name them.
CAPABILITIES = (
    "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
    "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
    "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
    "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
    "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
    "CHECKPOINT_RESTORE",
)
CAP_SETS = ("bounding", "effective", "inheritable", "permitted", "ambient")
RUNC = os.environ.get("DKC_RUNC", "runc")


def bounding_set(status_text: str) -> set[str]:
    """``CAP_*`` names in the CapBnd line of /proc/<pid>/status."""
    for line in status_text.splitlines():
        if line.startswith("CapBnd:"):
            mask = int(line.split()[1], 16)
            return {f"CAP_{name}" for bit, name in enumerate(CAPABILITIES) if mask >> bit & 1}
    return {f"CAP_{name}" for name in CAPABILITIES}


def withheld(status_text: str) -> set[str]:
    return {f"CAP_{name}" for name in CAPABILITIES} - bounding_set(status_text)


def patch_spec(spec: dict, missing: set[str]) -> bool:
    """Remove ``missing`` capabilities and a negative oomScoreAdj from an OCI spec, in place; True if it changed."""
    return patch_process(spec.get("process") or {}, missing)


def patch_process(process: dict, missing: set[str]) -> bool:
    """The same for one OCI process (a spec's ``process``, or the file ``runc exec --process`` reads)."""
    changed = False
    capabilities = process.get("capabilities") or {}
    for cap_set in CAP_SETS:
        names = capabilities.get(cap_set)
        if names and any(name in missing for name in names):
            capabilities[cap_set] = [name for name in names if name not in missing]
            changed = True
    if isinstance(process.get("oomScoreAdj"), int) and process["oomScoreAdj"] < 0 and "CAP_SYS_RESOURCE" in missing:
        process["oomScoreAdj"] = 0
        changed = True
    return changed


def _flag_value(argv: list[str], long: str, short: str) -> Path | None:
    """The value of ``--long V``, ``-s V`` or ``--long=V`` in argv, if given."""
    for index, word in enumerate(argv):
        if word in (long, short) and index + 1 < len(argv):
            return Path(argv[index + 1])
        if word.startswith(f"{long}="):
            return Path(word.split("=", 1)[1])
    return None


def bundle_of(argv: list[str]) -> Path | None:
    """The bundle directory of a ``create``/``run`` call (``--bundle DIR``, ``-b DIR`` or ``--bundle=DIR``)."""
    if not any(word in ("create", "run") for word in argv):
        return None
    return _flag_value(argv, "--bundle", "-b") or Path.cwd()  # runc's default bundle is the working directory


def process_file_of(argv: list[str]) -> Path | None:
    """The process file of an ``exec`` call (``--process FILE``, ``-p FILE`` or ``--process=FILE``): docker exec
    passes the new process's capabilities there, not in the bundle."""
    return _flag_value(argv, "--process", "-p") if "exec" in argv else None


def _rewrite(path: Path, patch) -> None:
    if path.is_file():
        document = json.loads(path.read_text())
        if patch(document, withheld(Path("/proc/self/status").read_text())):
            path.write_text(json.dumps(document))


def main(argv: list[str]) -> None:
    bundle = bundle_of(argv)
    if bundle is not None:
        _rewrite(bundle / "config.json", patch_spec)
    process_file = process_file_of(argv)
    if process_file is not None:
        _rewrite(process_file, patch_process)
    os.execvp(RUNC, [RUNC, *argv])


if __name__ == "__main__":
    main(sys.argv[1:])
