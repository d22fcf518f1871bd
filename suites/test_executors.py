"""C6 and C7: where steps run, per executor.

C6 K8sRunLauncher + multiprocess: one Job per run, no step Jobs, steps run as processes of the run pod.
C7 K8sRunLauncher + k8s_job_executor: one `dagster-step-<hash>` Job per step; the step pod runs
   `dagster api execute_step` and its DAGSTER_COMPRESSED_EXECUTE_STEP_ARGS decodes to ExecuteStepArgs
   with this run's id and this step's key.
"""

from __future__ import annotations

import pytest
from dagster._grpc.types import ExecuteStepArgs
from dagster._serdes import deserialize_value

from deploy import names
from deploy.deployment import Deployment
from observation.runs import STEP_ARGS_ENV, env_of, step_args_json
from suites import only

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster]


@pytest.mark.c6
def test_multiprocess_steps_run_as_processes_of_the_run_pod(dagster: Deployment) -> None:
    only(dagster, "k8s-multiprocess")

    run_id = dagster.run_to_success("report")
    found = dagster.footprint(run_id)
    reports = dagster.step_reports(run_id)

    assert [j.metadata.name for j in found.run_jobs] == [names.run_job_name(run_id)], "expected exactly one run Job"
    assert not found.step_jobs, f"multiprocess made step Jobs: {[j.metadata.name for j in found.step_jobs]}"
    assert len(found.run_pods) == 1, f"expected one run pod, found {[p.metadata.name for p in found.run_pods]}"
    run_pod = found.run_pods[0].metadata.name
    assert reports, f"run {run_id} reported no step output"
    for step, seen in reports.items():
        assert seen["hostname"] == run_pod, f"step {step} ran in {seen['hostname']}, not in the run pod {run_pod}"


@pytest.mark.c7
def test_each_step_runs_in_its_own_job_with_its_own_step_args(dagster: Deployment) -> None:
    only(dagster, "k8s-job")

    run_id = dagster.run_to_success("report")
    found = dagster.footprint(run_id)
    reports = dagster.step_reports(run_id)

    assert len(found.run_jobs) == 1, f"expected one run Job, found {[j.metadata.name for j in found.run_jobs]}"
    assert len(found.step_jobs) == len(reports) == 1, (
        f"expected one step Job per step: jobs {[j.metadata.name for j in found.step_jobs]}, steps {list(reports)}")
    step_pod = found.step_pods[0]
    container = step_pod.spec.containers[0]
    assert container.args[:3] == ["dagster", "api", "execute_step"], f"step pod runs {container.args}"
    assert reports["report"]["hostname"] == step_pod.metadata.name, "the step did not run in its step pod"

    encoded = env_of(container).get(STEP_ARGS_ENV)
    assert encoded, f"step pod has no {STEP_ARGS_ENV}"
    args = deserialize_value(step_args_json(encoded), ExecuteStepArgs)
    assert args.run_id == run_id, f"step args name run {args.run_id}, not {run_id}"
    assert args.step_keys_to_execute == ["report"], f"step args name steps {args.step_keys_to_execute}"

