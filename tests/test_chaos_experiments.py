"""Self-tests: experiment files validate, a broken one fails in one line, journals are read right."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos import run as chaos_run


@pytest.mark.parametrize("experiment", sorted(chaos_run.EXPERIMENTS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_experiments_are_valid(experiment: Path, tmp_path: Path) -> None:
    chaos_run.validate(experiment, tmp_path / "no-kubeconfig")


def test_a_broken_experiment_fails_in_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("title: no method here\n")
    with pytest.raises(chaos_run.ExperimentError) as failure:
        chaos_run.validate(broken, tmp_path / "no-kubeconfig")
    assert "broken.yaml is invalid" in str(failure.value)
    assert "\n" not in str(failure.value)


def test_a_missing_experiment_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(chaos_run.ExperimentError, match="does not exist"):
        chaos_run.validate(tmp_path / "nope.yaml", tmp_path / "kc")


def test_action_output_and_failed_activities() -> None:
    journal = {"status": "completed", "run": [
        {"activity": {"name": "terminate"}, "status": "succeeded", "output": ["pod-a"]},
        {"activity": {"name": "broken"}, "status": "failed", "exception": ["boom"]},
    ]}
    assert chaos_run.action_output(journal, "terminate") == ["pod-a"]
    with pytest.raises(chaos_run.ExperimentError, match="activity broken failed"):
        chaos_run.action_output(journal, "broken")
    with pytest.raises(chaos_run.ExperimentError, match="did not run"):
        chaos_run.action_output(journal, "absent")
