"""C10 and C11: what the code location passes on to the pods of its runs.

C10 env vars (plain, from ConfigMaps, from Secrets) set on a code location server reach run pods and
    step pods — checked in the pod spec AND inside the process.
C11 the code location's image runs its run and step pods; two code locations with different images
    never mix.
"""

from __future__ import annotations

import pytest

from deploy.deployment import Deployment
from suites.expected import missing_from_spec, wrong_in_process
from suites.known import known_defect

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster]

CELERY_RUN_POD_CONTEXT = known_defect(
    "Dagster issue #13728: CeleryK8sRunLauncher does not apply the code location's container context "
    "(env, env_config_maps, env_secrets, volumes) to the run pod")
CELERY_STEP_POD_CONTEXT = known_defect(
    "Dagster issue #13728, seen for step pods too: celery_k8s_job_executor's step pods get none of the "
    "code location's env (no DKC_PLAIN, no envFrom of its ConfigMap or Secret)")


def _c10_run_pod(dagster: Deployment) -> None:
    run_id = dagster.run_to_success("report")
    found = dagster.footprint(run_id)

    assert found.run_pods, f"no run pod found for run {run_id}"
    missing = missing_from_spec(found.run_pods[0])
    assert not missing, f"run pod {found.run_pods[0].metadata.name} spec lacks: {', '.join(missing)}"
    if dagster.settings.combination == "k8s-multiprocess":  # the step ran inside the run pod's process tree
        wrong = wrong_in_process(dagster, dagster.step_reports(run_id)["report"])
        assert not wrong, f"inside the run pod's process: {', '.join(wrong)}"


@pytest.mark.c10
def test_code_location_env_reaches_the_run_pod(dagster: Deployment, request: pytest.FixtureRequest) -> None:
    if dagster.settings.uses_celery:
        request.applymarker(CELERY_RUN_POD_CONTEXT)
    _c10_run_pod(dagster)


@pytest.mark.c10
def test_code_location_env_reaches_step_pods_in_spec_and_process(
    dagster: Deployment, request: pytest.FixtureRequest
) -> None:
    if dagster.settings.combination == "k8s-multiprocess":
        pytest.skip("multiprocess has no step pods (its steps are checked in the run pod)")
    if dagster.settings.uses_celery:
        request.applymarker(CELERY_STEP_POD_CONTEXT)

    run_id = dagster.run_to_success("report")
    found = dagster.footprint(run_id)
    report = dagster.step_reports(run_id)["report"]

    assert found.step_pods, f"no step pod found for run {run_id}"
    missing = missing_from_spec(found.step_pods[0])
    assert not missing, f"step pod {found.step_pods[0].metadata.name} spec lacks: {', '.join(missing)}"
    wrong = wrong_in_process(dagster, report)
    assert not wrong, f"inside the step's process: {', '.join(wrong)}"


@pytest.mark.c11
def test_each_code_locations_image_runs_its_runs_and_steps(dagster: Deployment) -> None:
    images = {loc.name: loc.image for loc in dagster.settings.code_locations}
    assert len(set(images.values())) == len(images), f"code locations must have different images: {images}"

    for location, image in images.items():
        run_id = dagster.run_to_success("report", location=location)
        found = dagster.footprint(run_id)
        reports = dagster.step_reports(run_id)

        for pod in found.pods:
            used = pod.spec.containers[0].image
            assert used == image, f"{location}: pod {pod.metadata.name} runs {used}, expected {image}"
        # Inside the process: the code it ran is the code baked into this location's image.
        for step, seen in reports.items():
            assert seen["location"] == location, f"{location}: step {step} ran the code of {seen['location']}"
