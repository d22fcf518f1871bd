"""The cluster itself works: our image runs, DNS answers, Services route, Jobs complete."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from kubernetes import client

from clusters import ClusterInfo
from images.smoke import smoke_image
from observation.kube import job_condition, job_summary, pod_summary, wait_job_finished, wait_pod_finished

pytestmark = [pytest.mark.smoke, pytest.mark.needs_cluster]


@pytest.fixture(scope="module")
def image(load_image: Callable[[str, Path], str]) -> str:
    """The smoke image, built from Debian's busybox-static and loaded into the cluster."""
    return load_image(*smoke_image())


def run_pod(core: client.CoreV1Api, namespace: str, image: str, script: str) -> tuple[client.V1Pod, str]:
    """Run ``script`` in a one-shot pod of ``image``; return the finished pod and its log."""
    name = f"smoke-{uuid.uuid4().hex[:8]}"
    core.create_namespaced_pod(namespace, client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels={"app.kubernetes.io/part-of": "dkc-smoke"}),
        spec=client.V1PodSpec(restart_policy="Never", containers=[client.V1Container(
            name="main", image=image, image_pull_policy="Never", command=["/bin/sh", "-c", script])]),
    ))
    pod = wait_pod_finished(core, namespace, name, timeout=120)
    log = core.read_namespaced_pod_log(name, namespace, _preload_content=False).data.decode(errors="replace")
    return pod, log


def test_a_pod_runs_an_image_we_built(kube: client.ApiClient, namespace: str, image: str) -> None:
    core = client.CoreV1Api(kube)
    pod, log = run_pod(core, namespace, image, "echo hello from $(hostname)")

    assert pod.status.phase == "Succeeded", f"pod did not succeed: {pod_summary(pod)}; log: {log}"
    assert f"hello from {pod.metadata.name}" in log, f"unexpected output: {log!r}"
    assert pod.status.container_statuses[0].image.endswith(image.rsplit("/", 1)[-1]), (
        f"pod ran {pod.status.container_statuses[0].image}, not {image}")


def test_coredns_resolves_kubernetes_default(kube: client.ApiClient, namespace: str, image: str) -> None:
    core = client.CoreV1Api(kube)
    service_ip = core.read_namespaced_service("kubernetes", "default").spec.cluster_ip

    # busybox's nslookup does not apply the search path, so ask for the full name of kubernetes.default.
    pod, log = run_pod(core, namespace, image, "nslookup kubernetes.default.svc.cluster.local")

    assert pod.status.phase == "Succeeded", f"nslookup failed: {pod_summary(pod)}; output: {log}"
    assert service_ip in log, f"kubernetes.default did not resolve to {service_ip}: {log}"


def test_apiserver_answers_through_the_kubernetes_service(
    kube: client.ApiClient, namespace: str, image: str, cluster: ClusterInfo
) -> None:
    core = client.CoreV1Api(kube)
    version = client.VersionApi(kube).get_code().git_version

    pod, log = run_pod(core, namespace, image,
                       "wget -q -O- --no-check-certificate https://kubernetes.default.svc/version")

    assert pod.status.phase == "Succeeded", f"the apiserver was not reached: {pod_summary(pod)}; output: {log}"
    assert f'"gitVersion": "{version}"' in log, f"unexpected /version answer: {log}"
    if cluster.kubernetes_version:
        assert version == cluster.kubernetes_version, f"cluster runs {version}, asked for {cluster.kubernetes_version}"


def test_a_job_runs_to_complete(kube: client.ApiClient, namespace: str, image: str) -> None:
    batch = client.BatchV1Api(kube)
    name = f"smoke-job-{uuid.uuid4().hex[:6]}"
    batch.create_namespaced_job(namespace, client.V1Job(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1JobSpec(backoff_limit=0, template=client.V1PodTemplateSpec(spec=client.V1PodSpec(
            restart_policy="Never", containers=[client.V1Container(
                name="main", image=image, image_pull_policy="Never", command=["/bin/sh", "-c", "echo done"])])))))

    job = wait_job_finished(batch, namespace, name, timeout=120)

    assert job_condition(job, "Complete"), f"job did not complete: {job_summary(job)}"
    assert job.status.succeeded == 1, f"job succeeded {job.status.succeeded} times, expected once"
