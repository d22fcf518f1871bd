"""C9: Kubernetes settings flow from the instance and from tags to the pods of a run.

- the instance's run_k8s_config (resources, nodeSelector) reaches run pods;
- a job's `dagster-k8s/config` tag overrides the instance's resources (and keeps its nodeSelector);
- an op's `dagster-k8s/config` tag reaches the pod of its step;
- step pods inherit the run pod's settings that come from the instance (resources, nodeSelector);
- every such pod ran on a node the nodeSelector selects: on a cluster of several nodes the suite's instance selects
  the one node labelled dkc.dagster.io/run-node, so the pods land there and only there.
  A job's own `dagster-k8s/config` tag is documented to configure the run pod only, not the step pods
  of k8s_job_executor (Dagster docs, "Customizing your Kubernetes deployment"; PR #10591, #12308), so
  inheritance is checked on a job without such a tag.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from deploy.deployment import Deployment
from observation.runs import RunFootprint
from suites import only
from workloads.locations.conformance.definitions import JOB_TAG_RESOURCES, OP_TAG_ANNOTATION

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster, pytest.mark.c9]



def instance_resources(dagster: Deployment) -> dict[str, dict[str, str]]:
    """The run pods' resources the instance's run_k8s_config sets (ours, or read back from someone else's)."""
    return (dagster.settings.run_k8s_config.get("container_config") or {}).get("resources") or {}


def instance_node_selector(dagster: Deployment) -> dict[str, str]:
    return (dagster.settings.run_k8s_config.get("pod_spec_config") or {}).get("node_selector") or {}


def needs_instance_settings(dagster: Deployment) -> None:
    if not instance_resources(dagster) and not instance_node_selector(dagster):
        pytest.skip(f"the instance in {dagster.namespace} sets no run_k8s_config resources or nodeSelector to follow")


def resources_of(pod: client.V1Pod) -> dict[str, dict[str, str]]:
    found = pod.spec.containers[0].resources
    return {kind: dict(values) for kind, values in (("requests", found.requests), ("limits", found.limits)) if values}


def node_selector_of(pod: client.V1Pod) -> dict[str, str]:
    return dict(pod.spec.node_selector or {})


def includes(have: dict[str, Any], want: dict[str, Any]) -> bool:
    return all(have.get(kind, {}).get(key) == value for kind, values in want.items() for key, value in values.items())


def selects(have: dict[str, str], want: dict[str, str]) -> bool:
    return all(have.get(key) == value for key, value in want.items())


def assert_ran_on_a_selected_node(api: client.ApiClient, pod: client.V1Pod) -> None:
    """The node the pod ran on carries every label of the pod's nodeSelector."""
    assert pod.spec.node_name, f"pod {pod.metadata.name} was never scheduled"
    labels = client.CoreV1Api(api).read_node(pod.spec.node_name, _request_timeout=10).metadata.labels or {}
    selector = node_selector_of(pod)
    assert selects(labels, selector), (
        f"pod {pod.metadata.name} ran on node {pod.spec.node_name}, whose labels lack its nodeSelector {selector}")


def one_run_pod(found: RunFootprint) -> client.V1Pod:
    names = [p.metadata.name for p in found.run_pods]
    assert len(names) == 1, f"expected one run pod for {found.run_id}: {names}"
    return found.run_pods[0]


@pytest.fixture(scope="module")
def tagged_run(dagster: Deployment) -> RunFootprint:
    """One run of the job whose job tag sets resources and whose op tag annotates its step pod."""
    return dagster.footprint(dagster.run_to_success("tagged"))


def test_instance_run_k8s_config_reaches_run_pods(dagster: Deployment) -> None:
    only(dagster, "k8s-multiprocess", "k8s-job")  # CeleryK8sRunLauncher has no run_k8s_config
    needs_instance_settings(dagster)
    pod = one_run_pod(dagster.footprint(dagster.run_to_success("ping")))
    resources, node_selector = instance_resources(dagster), instance_node_selector(dagster)

    assert includes(resources_of(pod), resources), (
        f"run pod {pod.metadata.name} has resources {resources_of(pod)}, the instance sets {resources}")
    assert selects(node_selector_of(pod), node_selector), (
        f"run pod {pod.metadata.name} has nodeSelector {node_selector_of(pod)}, the instance sets {node_selector}")
    assert_ran_on_a_selected_node(dagster.api, pod)


def test_a_job_tag_overrides_the_instance_resources_of_its_run_pod(dagster: Deployment,
                                                                    tagged_run: RunFootprint) -> None:
    pod = one_run_pod(tagged_run)

    assert includes(resources_of(pod), JOB_TAG_RESOURCES), (
        f"run pod {pod.metadata.name} has resources {resources_of(pod)}; the job's tag sets {JOB_TAG_RESOURCES}")
    if dagster.settings.combination != "celery-k8s":
        assert selects(node_selector_of(pod), instance_node_selector(dagster)), (
            f"the job tag (resources only) dropped the instance's nodeSelector: {node_selector_of(pod)}")


def test_an_op_tag_reaches_the_pod_of_its_step(dagster: Deployment, tagged_run: RunFootprint) -> None:
    only(dagster, "k8s-job", "celery-k8s")
    assert len(tagged_run.step_pods) == 1, f"expected one step pod: {[p.metadata.name for p in tagged_run.step_pods]}"
    pod = tagged_run.step_pods[0]

    annotations = pod.metadata.annotations or {}

    assert annotations.get(OP_TAG_ANNOTATION) == "reached", (
        f"step pod {pod.metadata.name} lacks the op tag's annotation {OP_TAG_ANNOTATION}; it has {annotations}")


def test_step_pods_inherit_the_run_pods_settings_from_the_instance(dagster: Deployment) -> None:
    only(dagster, "k8s-job")  # CeleryK8sRunLauncher has no run_k8s_config to inherit
    needs_instance_settings(dagster)
    found = dagster.footprint(dagster.run_to_success("ping"))
    run_pod = one_run_pod(found)
    assert found.step_pods, f"no step pod for run {found.run_id}"

    for pod in found.step_pods:
        assert resources_of(pod) == resources_of(run_pod), (
            f"step pod {pod.metadata.name} has resources {resources_of(pod)}, the run pod {resources_of(run_pod)}")
        assert node_selector_of(pod) == node_selector_of(run_pod), (
            f"step pod {pod.metadata.name} has nodeSelector {node_selector_of(pod)}, the run pod "
            f"{node_selector_of(run_pod)}")
        assert selects(node_selector_of(pod), instance_node_selector(dagster)), (
            f"step pod {pod.metadata.name} has nodeSelector {node_selector_of(pod)}, the instance "
            f"{instance_node_selector(dagster)}")
        assert_ran_on_a_selected_node(dagster.api, pod)
