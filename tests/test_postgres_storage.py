"""Self-tests: PostgreSQL's data on a PersistentVolume (manifests, node choice, read-back, the one-postmaster guard)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kubernetes import client

from clusters.provider import RUN_NODE_LABEL
from common.waits import Observation, wait_for
from deploy import manifests, names, postgres_storage
from deploy import postgres_manifests as pg
from deploy import settings as s
from deploy.errors import DeployError
from deploy.settings import CodeLocation, DeploymentSettings, Images, PostgresVolume
from images.dagster import POSTGRES_ENTRYPOINT

VOLUME = postgres_storage.new_volume("ns", "node-a", token="0123abcd")


def make(volume: PostgresVolume | None = VOLUME) -> DeploymentSettings:
    images = Images(dagster="docker.io/local/dagster:1", postgres="docker.io/local/postgres:1")
    location = CodeLocation(name="alpha", image="docker.io/local/alpha:1", python_file="/d.py")
    return DeploymentSettings(combination="k8s-job", namespace="ns", images=images, code_locations=(location,),
                              postgres_password="pw", postgres_volume=volume)


def of_kind(cfg: DeploymentSettings, kind: str) -> list[dict]:
    return [d for group in manifests.all_manifests(cfg).values() for d in group if d["kind"] == kind]


def test_a_new_volume_has_a_directory_of_its_own_under_the_node_root() -> None:
    assert VOLUME.host_path == f"{postgres_storage.HOST_ROOT}/ns-0123abcd"
    assert VOLUME.name == "ns-postgresql-0123abcd"
    assert postgres_storage.new_volume("ns", "n").host_path != postgres_storage.new_volume("ns", "n").host_path


def test_postgres_runs_on_the_claim_with_pgdata_below_the_mount() -> None:
    deployment = next(d for d in of_kind(make(), "Deployment") if d["metadata"]["name"] == names.POSTGRES)
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": pg.POSTGRES_DATA_CLAIM}}]
    assert container["volumeMounts"] == [{"name": "data", "mountPath": pg.POSTGRES_DATA_MOUNT}]
    assert {"name": "PGDATA", "value": pg.POSTGRES_PGDATA} in container["env"]
    assert container["command"][:2] == ["sh", "-c"] and POSTGRES_ENTRYPOINT in container["command"][2]
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}


def test_the_volume_is_pre_bound_pinned_to_its_node_and_labelled() -> None:
    (pv,) = of_kind(make(), "PersistentVolume")
    (claim,) = of_kind(make(), "PersistentVolumeClaim")
    assert pv["metadata"]["labels"][pg.POSTGRES_DATA_LABEL] == "ns"
    assert pv["metadata"]["labels"][s.MANAGED_LABEL] == "dkc"
    assert "namespace" not in pv["metadata"]  # cluster-scoped
    spec = pv["spec"]
    assert spec["hostPath"] == {"path": VOLUME.host_path, "type": "DirectoryOrCreate"}
    assert spec["claimRef"] == {"namespace": "ns", "name": pg.POSTGRES_DATA_CLAIM}
    assert spec["persistentVolumeReclaimPolicy"] == "Retain"
    assert spec["storageClassName"] == "" and claim["spec"]["storageClassName"] == ""  # no provisioner takes it
    assert claim["spec"]["volumeName"] == VOLUME.name
    terms = spec["nodeAffinity"]["required"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-a"]}]}]


def test_without_a_volume_no_persistent_objects_are_rendered() -> None:
    assert not of_kind(make(None), "PersistentVolume") and not of_kind(make(None), "PersistentVolumeClaim")


def test_dagster_pods_roll_when_postgres_gets_another_data_directory() -> None:
    def annotations(cfg: DeploymentSettings) -> dict[str, str]:
        return {d["metadata"]["name"]: d["spec"]["template"]["metadata"]["annotations"]
                   .get("dkc.dagster.io/postgresql-data-dir") for d in of_kind(cfg, "Deployment")
                if d["metadata"]["name"] != names.POSTGRES}

    before, after = annotations(make(None)), annotations(make())
    assert set(before) == {names.WEBSERVER, names.DAEMON, "dagster-dagster-user-deployments-alpha"}
    assert all(value == VOLUME.host_path for value in after.values())
    assert all(before[name] != after[name] for name in before)


def test_the_cleaner_runs_on_the_volumes_node_and_removes_the_directory_itself() -> None:
    pod = pg.postgres_data_cleaner(make(), VOLUME)
    spec = pod["spec"]
    assert spec["nodeSelector"] == {"kubernetes.io/hostname": "node-a"}
    assert spec["volumes"][0]["hostPath"]["path"] == postgres_storage.HOST_ROOT
    assert spec["containers"][0]["command"] == ["rm", "-rf", "/node-dir/ns-0123abcd"]
    assert len(pod["metadata"]["name"]) <= 63


def node(name: str, ready: bool = True, taint: str | None = None, cordoned: bool = False,
         run_node: bool = False) -> client.V1Node:
    labels = {"kubernetes.io/hostname": f"{name}-host", **({RUN_NODE_LABEL: "true"} if run_node else {})}
    return client.V1Node(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1NodeSpec(unschedulable=cordoned,
                               taints=[client.V1Taint(key=taint, effect="NoSchedule")] if taint else None),
        status=client.V1NodeStatus(conditions=[client.V1NodeCondition(type="Ready", status=str(ready))]))


def test_the_data_goes_to_the_first_ready_untainted_node() -> None:
    nodes = [node("c", ready=True), node("a", taint="node-role.kubernetes.io/control-plane"), node("b", ready=False)]
    assert postgres_storage.schedulable_hostname(nodes) == "c-host"


def test_the_data_stays_off_the_run_node_when_another_node_takes_pods() -> None:
    assert postgres_storage.schedulable_hostname([node("a", run_node=True), node("b"), node("c")]) == "b-host"
    assert postgres_storage.schedulable_hostname([node("a", run_node=True), node("b", cordoned=True)]) == "a-host"


def test_no_node_for_the_data_is_one_line_naming_the_fix() -> None:
    with pytest.raises(DeployError) as failure:
        postgres_storage.schedulable_hostname([node("a", cordoned=True), node("b", taint="x")])
    message = str(failure.value)
    assert "\n" not in message and "a (cordoned)" in message and "b (taint x)" in message
    assert "uncordon" in message


def test_a_kept_volume_is_read_back_from_its_persistent_volume() -> None:
    (pv,) = of_kind(make(), "PersistentVolume")
    parsed = client.ApiClient()._ApiClient__deserialize(pv, "V1PersistentVolume")  # as the API returns it
    assert postgres_storage.volume_of(parsed) == VOLUME


# -- the guard that keeps one PostgreSQL per data directory, run with a stand-in for the entrypoint ---------------

# Like the postmaster, it installs its own handlers: a shell's background job starts with SIGINT ignored.
FAKE_POSTGRES = """#!{python}
import os, signal, sys, time
name = os.environ["NAME"]
def stop(kind):
    print(name, kind, "shutdown", flush=True)
    sys.exit(0)
signal.signal(signal.SIGINT, lambda *_: stop("fast"))
signal.signal(signal.SIGTERM, lambda *_: stop("smart"))
print(name, "running", flush=True)
while True:
    time.sleep(0.1)
"""


def start_guard(tmp_path: Path, name: str) -> tuple[subprocess.Popen[str], Path]:
    entrypoint = tmp_path / "entrypoint"
    entrypoint.write_text(FAKE_POSTGRES.format(python=sys.executable))
    entrypoint.chmod(0o755)
    script = (pg.POSTGRES_GUARD.replace(pg.POSTGRES_DATA_MOUNT, str(tmp_path))
              .replace(POSTGRES_ENTRYPOINT, str(entrypoint)))
    log = tmp_path / f"{name}.log"
    with log.open("w") as out:
        # A session of its own: the test kills the guard's whole group, its stand-in child included.
        proc = subprocess.Popen(["sh", "-c", script], stdout=out, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "NAME": name}, start_new_session=True)
    return proc, log


def logged(log: Path, line: str) -> Observation[None]:
    text = log.read_text()
    return Observation(line in text.splitlines(), text.strip() or "no output yet")


def test_a_replacement_waits_for_the_old_postgres_which_stops_fast_on_sigterm(tmp_path: Path) -> None:
    old, old_log = start_guard(tmp_path, "old")
    new = None
    try:
        wait_for("the old PostgreSQL to run", lambda: logged(old_log, "old running"), 10, interval=0.05)
        new, new_log = start_guard(tmp_path, "new")
        wait_for("the new one to wait for the lock",
                 lambda: logged(new_log, "dkc: waiting for the previous PostgreSQL on this volume to exit"), 10,
                 interval=0.05)
        assert "new running" not in new_log.read_text()

        old.send_signal(signal.SIGTERM)  # what the kubelet sends
        assert old.wait(10) == 0
        assert "old fast shutdown" in old_log.read_text().splitlines()
        wait_for("the new one to start once the old one is gone", lambda: logged(new_log, "new running"), 10,
                 interval=0.05)
    finally:
        for proc in (old, new):
            if proc:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
