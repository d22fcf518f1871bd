"""Run an experiment file exactly as a user would (`chaos run`), against one cluster, keeping its journal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from common.errors import DkcError
from common.record import attach_file, step

EXPERIMENTS = Path(__file__).parent / "experiments"


class ExperimentError(DkcError):
    """The experiment file is broken, or its run did not complete."""


def _chaos(args: list[str], kubeconfig: Path, context: str | None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}  # for the child only: ours stays untouched
    if context:
        env["KUBERNETES_CONTEXT"] = context
    chaos = Path(sys.executable).with_name("chaos")
    return subprocess.run([str(chaos), *args], env=env, capture_output=True, text=True)


def validate(experiment: Path, kubeconfig: Path, context: str | None = None) -> None:
    """A broken experiment file fails here, in one line, before anything is touched."""
    if not experiment.exists():
        raise ExperimentError(f"experiment file {experiment} does not exist")
    proc = _chaos(["--no-log-file", "validate", str(experiment)], kubeconfig, context)
    if proc.returncode != 0:
        last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ExperimentError(f"experiment {experiment.name} is invalid: {last[0]}")


def run(experiment: Path, variables: dict[str, Any], journal: Path, kubeconfig: Path,
        context: str | None = None) -> dict[str, Any]:
    """Validate then run ``experiment`` with ``--var`` values; returns its journal (also written to ``journal``)."""
    validate(experiment, kubeconfig, context)
    journal.parent.mkdir(parents=True, exist_ok=True)
    args = ["--no-log-file", "run", "--journal-path", str(journal), "--hypothesis-strategy", "default"]
    for key, value in variables.items():
        args += ["--var", var_argument(key, value)]
    shown = ", ".join(f"{key}={value}" for key, value in variables.items())
    with step(f"Fault: chaos run {experiment.name} ({shown})"):
        proc = _chaos([*args, str(experiment)], kubeconfig, context)
        if not journal.exists():
            raise ExperimentError(f"experiment {experiment.name} wrote no journal: {proc.stderr.strip()[-300:]}")
        attach_file(f"chaos journal of {experiment.name}", journal)
    return json.loads(journal.read_text())


def activity_time(journal: dict[str, Any], name: str, edge: str = "end") -> float:
    """When the named activity started or ended (``edge``), as the journal recorded it (epoch seconds)."""
    entry = next(e for e in journal["run"] if e["activity"]["name"] == name)
    return datetime.fromisoformat(entry[edge]).timestamp()


def var_argument(key: str, value: Any) -> str:
    """``key=value``, typed for chaostoolkit when not text (``key:int=45``): a pause of "45" is not 45 seconds."""
    kind = "int" if isinstance(value, int) and not isinstance(value, bool) else (
        "float" if isinstance(value, float) else None)
    return f"{key}:{kind}={value}" if kind else f"{key}={value}"


def action_output(journal: dict[str, Any], name: str) -> Any:
    """What the named method activity returned (e.g. the pods an action terminated)."""
    for entry in journal.get("run", []):
        if entry["activity"]["name"] == name:
            if entry["status"] != "succeeded":
                raise ExperimentError(f"activity {name} {entry['status']}: {entry.get('exception', '')}")
            return entry.get("output")
    raise ExperimentError(f"activity {name} did not run (experiment status {journal.get('status')})")
