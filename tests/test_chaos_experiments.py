"""Self-tests: experiment files validate, a broken one fails in one line, journals are read right."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chaos import faults
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


def test_pods_of_two_locations_merge_into_one_selector() -> None:
    alpha = "app=dagster,component=user-deployments,deployment=alpha"
    beta = "app=dagster,component=user-deployments,deployment=beta"
    assert faults.merge_selectors([alpha, beta]) == "app=dagster,component=user-deployments,deployment in (alpha,beta)"
    assert faults.merge_selectors([alpha]) == alpha
    with pytest.raises(ValueError, match="label keys differ"):
        faults.merge_selectors([alpha, "team=x"])


def test_every_control_plane_fault_uses_the_selectors_it_is_given() -> None:
    """Custom selectors (--webserver-selector & co., read back from the Deployments) reach every experiment."""
    parts = faults.ControlPlane("team=web", "team=daemon",
                                {"alpha": "team=code,loc=alpha", "beta": "team=code,loc=beta"})
    by_name = {name: faults.control_plane_fault(name, parts, "alpha") for name in faults.CONTROL_PLANE_FAULTS}
    assert by_name["webserver"].variables["webserver_selector"] == "team=web"
    assert by_name["daemon"].variables["daemon_selector"] == "team=daemon"
    assert by_name["code-location"].variables["location_selector"] == "team=code,loc=alpha"
    assert by_name["all-three"].variables["locations_selector"] == "loc in (alpha,beta),team=code"
    assert by_name["all-three"].selectors == ("team=web", "team=daemon", "team=code,loc=alpha", "team=code,loc=beta")
    for fault in by_name.values():
        text = (chaos_run.EXPERIMENTS / fault.experiment).read_text()
        assert all(f"name: {action}" in text for action in fault.actions), fault
        assert all(f"${{{key}}}" in text for key in fault.variables), fault
        assert "label_selector: component=" not in text, f"{fault.experiment} hard-codes a selector"


def test_numbers_reach_chaostoolkit_as_numbers() -> None:
    """A pause of "45" (text) makes chaostoolkit's sleep fail at once: the outage would last no time at all."""
    assert chaos_run.var_argument("outage_seconds", 45) == "outage_seconds:int=45"
    assert chaos_run.var_argument("recovery_timeout", 2.5) == "recovery_timeout:float=2.5"
    assert chaos_run.var_argument("namespace", "dkc-k8s-job") == "namespace=dkc-k8s-job"
    assert chaos_run.var_argument("webserver_port", "80") == "webserver_port=80"


def test_stopping_a_process_refuses_any_but_the_one_named() -> None:
    """pause-apiserver run by hand with a wrong pid must not stop whatever runs there (here: this test itself)."""
    from chaoslib.exceptions import ActivityFailed

    from chaos.dagster import actions

    own = str(os.getpid())
    with pytest.raises(ActivityFailed, match="not kube-apiserver: refusing to signal it"):
        actions.stop_processes(own)
    with pytest.raises(ActivityFailed, match=r"pass --var pids=\$\(pgrep -d, -x kube-apiserver\)"):
        actions.stop_processes("")
    with pytest.raises(ActivityFailed, match="does not exist"):
        actions.continue_processes("999999999")
    assert actions.process_state(os.getpid()) in {"R", "S"}
    assert actions.process_state(999999999) == "gone"


def test_the_cut_off_rule_is_deleted_exactly_as_it_was_added() -> None:
    from chaos.partition import drop_rule

    added, deleted = drop_rule("-I", "10.244.1.5", "10.244.2.7", "t"), drop_rule("-D", "10.244.1.5", "10.244.2.7", "t")
    assert added[:6] == ["iptables", "-w", "5", "-I", "FORWARD", "1"] and added[-2:] == ["-j", "DROP"]
    assert [a for a in added if a not in ("-I", "1")] == [d for d in deleted if d != "-D"]
    assert "10.244.1.5/32" in added and "10.244.2.7/32" in added


def test_the_cut_off_policy_lets_the_run_pod_reach_all_but_postgresql() -> None:
    from chaos.partition import cut_off_policy

    policy = cut_off_policy("dkc-cut-off-r1", "r1-full-id", "10.244.1.7")
    assert policy.spec.pod_selector.match_labels == {"job-name": "dagster-run-r1-full-id"}
    assert policy.spec.policy_types == ["Egress"]
    (rule,) = policy.spec.egress
    (peer,) = rule.to
    assert peer.ip_block.cidr == "0.0.0.0/0" and peer.ip_block._except == ["10.244.1.7/32"]
