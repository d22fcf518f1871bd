"""External jobs: what a run passes on to the Kubernetes Jobs its ops launch (k8s_job_op, execute_k8s_job).

C10 the code location's env vars (plain, ConfigMap, Secret) reach both kinds of external job: in the pod
    spec AND inside the process (the external program prints hashes of what it sees).
C11 an external job runs the image it was given: a run of location alpha launches its external jobs in
    location beta's image, and the program inside reports beta's code.
C15 what an external job writes to stdout and stderr is visible through Dagster: in the compute logs the
    webserver serves for the step that launched it.
C16 no external job pod carries a secret value in plain text in its args or env.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from kubernetes import client

from deploy import names, object_store
from deploy.deployment import Deployment
from observation.kube import pods_selector
from observation.runs import RunFootprint
from suites.expected import missing_from_spec, wrong_in_process
from suites.secrets import leaks_in, skip_if_some_secret_unknown
from workloads.locations.conformance.definitions import EXTERNAL_MARKER, external_jobs_run_config

pytestmark = [pytest.mark.conformance, pytest.mark.needs_cluster]

EXTERNAL_OPS = ("k8s_job_op", "execute_external_job")


@dataclass(frozen=True)
class ExternalRun:
    run_id: str
    image: str  # the image the external jobs were given
    image_location: str  # the code location whose code that image carries
    found: RunFootprint

    def pod_of(self, op: str) -> client.V1Pod:
        pods = [p for p in self.found.external_pods if p.metadata.labels.get(names.OP_LABEL) == op]
        assert len(pods) == 1, f"expected one external pod of op {op} in run {self.run_id}, found " + str(
            [p.metadata.name for p in self.found.external_pods])
        return pods[0]


@pytest.fixture(scope="module")
def external_run(dagster: Deployment) -> ExternalRun:
    """One run of alpha's external_jobs job whose two external jobs were given beta's image."""
    launching, given = dagster.settings.code_locations[0], dagster.settings.code_locations[1]
    run_id = dagster.webserver.launch_run(dagster.job("external_jobs"), launching.name,
                                          run_config=external_jobs_run_config(given.image))
    dagster.webserver.wait_for_run_status(run_id, ["SUCCESS"], timeout=400)
    return ExternalRun(run_id, given.image, given.name, dagster.footprint(run_id))


def seen_inside(dagster: Deployment, pod: client.V1Pod) -> dict[str, str]:
    """What the external program printed about its own process (read from the pod's log)."""
    # Raw bytes: the client would otherwise "deserialize" a log that looks like JSON into a Python repr.
    log = dagster.core.read_namespaced_pod_log(pod.metadata.name, dagster.namespace,
                                               _preload_content=False).data.decode()
    lines = [line for line in log.splitlines() if line.startswith(EXTERNAL_MARKER + " {")]
    assert lines, f"external pod {pod.metadata.name} printed no {EXTERNAL_MARKER} line; its log: {log[-300:]!r}"
    return json.loads(lines[0].removeprefix(EXTERNAL_MARKER + " "))


@pytest.mark.c10
@pytest.mark.parametrize("op", EXTERNAL_OPS)
def test_code_location_env_reaches_external_jobs_in_spec_and_process(
    dagster: Deployment, external_run: ExternalRun, op: str
) -> None:
    pod = external_run.pod_of(op)

    missing = missing_from_spec(pod)
    wrong = wrong_in_process(dagster, seen_inside(dagster, pod))

    assert not missing, f"{op}'s external pod {pod.metadata.name} spec lacks: {', '.join(missing)}"
    assert not wrong, f"inside {op}'s external job: {', '.join(wrong)}"


@pytest.mark.c11
@pytest.mark.parametrize("op", EXTERNAL_OPS)
def test_external_jobs_run_the_image_they_were_given(dagster: Deployment, external_run: ExternalRun, op: str) -> None:
    pod = external_run.pod_of(op)

    used = pod.spec.containers[0].image
    inside = seen_inside(dagster, pod)["location"]

    assert used == external_run.image, f"{op}'s external pod runs {used}, it was given {external_run.image}"
    assert inside == external_run.image_location, (
        f"{op}'s external job ran the code of location {inside}, not that of its image's {external_run.image_location}")


@dataclass(frozen=True)
class LogNodes:
    """Where a step's compute logs were written and where the webserver that serves them runs."""
    writer: str
    serving: list[str]

    def describe(self, op: str) -> str:
        return f"step {op} ran on node {self.writer}, the webserver on {', '.join(self.serving) or 'no node'}"


def log_nodes(dagster: Deployment, external_run: ExternalRun, op: str) -> LogNodes:
    writers = [p for p in external_run.found.step_pods if p.metadata.labels.get(names.OP_LABEL) == op]
    writer = (writers or external_run.found.run_pods)[0].spec.node_name
    selector = pods_selector(dagster.apps, dagster.namespace, dagster.settings.names.webserver)
    serving = {p.spec.node_name for p in dagster.core.list_namespaced_pod(dagster.namespace,
                                                                           label_selector=selector).items}
    return LogNodes(writer, sorted(serving))


def compute_logs_out_of_reach(dagster: Deployment, nodes: LogNodes, op: str) -> str:
    """Why the webserver of our deployment cannot read the step's compute logs ("" if it can): they are in a
    directory of the node the step ran on (LocalComputeLogManager on a hostPath), not in a store every node reaches.
    On several nodes our deployments keep them in an object store (deploy/object_store.py)."""
    if not dagster.settings.owned or dagster.settings.images.object_store or nodes.writer in nodes.serving:
        return ""
    return (f"{nodes.describe(op)}: its compute logs are in a directory of node {nodes.writer}; C15 on more than "
            "one node needs a compute log store every node reaches (the suite's deployments use an object store "
            "when the cluster has a labelled run node)")


def compute_log_store(dagster: Deployment) -> str:
    if not dagster.settings.owned:
        return "the deployment's own compute log manager"
    if dagster.settings.images.object_store:
        return f"S3ComputeLogManager on {object_store.NAME} (bucket {object_store.BUCKET})"
    return "LocalComputeLogManager in a node directory"


@pytest.mark.c15
@pytest.mark.parametrize("op", EXTERNAL_OPS)
def test_external_job_output_is_visible_through_dagster(
    dagster: Deployment, external_run: ExternalRun, op: str, record_property: pytest.RecordProperty
) -> None:
    captured = [event for event in dagster.webserver.run_events(external_run.run_id)
                if event.event_type == "LOGS_CAPTURED" and event.file_key and op in event.step_keys]
    nodes = log_nodes(dagster, external_run, op)
    record_property("compute_logs", f"{nodes.describe(op)}; {compute_log_store(dagster)}")
    on_another_node = compute_logs_out_of_reach(dagster, nodes, op)
    if on_another_node:
        pytest.skip(on_another_node)
    assert captured, f"Dagster captured no logs for step {op} of run {external_run.run_id}"

    logs = [dagster.webserver.captured_logs(external_run.run_id, event.file_key) for event in captured]
    text = "\n".join(log.stdout + log.stderr for log in logs)

    assert f"{EXTERNAL_MARKER} {{" in text, (
        f"the external job's stdout line is not in the compute logs Dagster serves for {op}: {text[-400:]!r}")
    assert f"{EXTERNAL_MARKER} on stderr" in text, (
        f"the external job's stderr line is not in the compute logs Dagster serves for {op}: {text[-400:]!r}")


@pytest.mark.c16
def test_no_secret_value_in_external_job_pods(dagster: Deployment, external_run: ExternalRun) -> None:
    pods = external_run.found.external_pods
    assert len(pods) == len(EXTERNAL_OPS), f"expected {len(EXTERNAL_OPS)} external pods, found {len(pods)}"

    leaks = leaks_in(dagster, pods)

    assert not leaks, "plaintext credentials: " + "; ".join(leaks)
    skip_if_some_secret_unknown(dagster)
