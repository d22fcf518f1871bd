"""Self-tests of deploy.bringup.reconfigured: a test gets other instance settings, and the old ones come back
afterwards, also when the test body raises or the new config never comes up. Both ways of applying them: the
suite's own manifests (server-side apply + rollouts) and a chart install (helm upgrade with other values).

No cluster: server-side apply and helm are replaced by recorders of what they were given (the dagster.yaml in the
instance ConfigMap, the values files), the rollout look and the waits' clock by fakes, the GraphQL client by one
that answers at once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from clusters import manifests as kube_manifests
from common import waits
from common.waits import Observation, WaitTimeout
from deploy import bringup, deployment, helm_deploy, manifests, names
from deploy.bringup import reconfigured
from deploy.deployment import Deployment
from deploy.errors import DeployError
from deploy.helm_values import chart_values
from deploy.images import code_locations
from deploy.settings import DeploymentSettings, HelmChart, Images
from tests.fakes import FakeClock

NS = "dkc-reconf"
BUSYBOX = "local/busybox:1"


def settings(combination: str = "celery-k8s", **changes: Any) -> DeploymentSettings:
    images = Images(dagster="local/dagster:1", postgres="local/postgres:15", broker="local/redis:7")
    cfg = DeploymentSettings(combination=combination, namespace=NS, images=images,
                             code_locations=code_locations([("alpha", "local/alpha:1")]),
                             postgres_password="pw", test_secret_value="s3cret")
    return replace(cfg, **changes)



@dataclass
class FakeCluster:
    """The instance config the cluster runs (the last one applied) and what was asked of it."""

    instance: list[dict[str, Any]] = field(default_factory=list)  # every dagster.yaml applied, in order
    applied: list[list[dict[str, Any]]] = field(default_factory=list)
    helm_values: list[list[dict[str, Any]]] = field(default_factory=list)  # per helm upgrade: its values files
    rolled: list[str] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)
    stuck_when: Callable[[dict[str, Any]], bool] = lambda config: False  # a config whose pods never roll out
    clock: FakeClock = field(default_factory=FakeClock)

    def apply(self, api: Any, documents: list[dict[str, Any]], namespace: str | None = None) -> list[str]:
        self.applied.append(documents)
        for doc in documents:
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == names.INSTANCE_CONFIG_MAP:
                self.instance.append(yaml.safe_load(doc["data"]["dagster.yaml"]))
        return []

    def run_helm(self, api: Any, args: list[str], what: str) -> str:
        files = [Path(args[i + 1]) for i, arg in enumerate(args) if arg == "--values"]
        self.helm_values.append([yaml.safe_load(path.read_text()) for path in files])  # read while they exist
        return ""

    def current(self) -> dict[str, Any]:
        return self.instance[-1] if self.instance else self.helm_values[-1][0]

    def rollout_complete(self, apps: Any, namespace: str, name: str) -> Observation[None]:
        if self.stuck_when(self.current()):
            return Observation(False, f"{name}: 0 updated, 1 available, 2 in all, of 1")
        self.rolled.append(name)
        return Observation(True, f"{name} rolled out")

    def wait_for(self, description: str, look: Callable[[], Observation[Any]], timeout: float,
                 interval: float = 1.0) -> Any:
        return waits.wait_for(description, look, timeout, interval, clock=self.clock, sleep=self.clock.sleep)


class FakeWebserver:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    def wait_until_answering(self, timeout: float, interval: float = 1.0) -> str:
        return "1.x"

    def reload_location(self, name: str) -> None:
        pass

    def wait_for_location_loaded(self, name: str, timeout: float, interval: float = 2.0,
                                 reload_on_error: bool = False) -> None:
        self.cluster.loaded.append(name)

    def daemon_statuses(self) -> list[Any]:
        return []  # every required daemon heartbeats


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster()
    monkeypatch.setattr(kube_manifests, "apply", fake.apply)
    monkeypatch.setattr(bringup, "idle_rollout",
                        lambda api, namespace, name, deaf_pid1=False:
                        lambda: fake.rollout_complete(None, namespace, name))
    for module in (bringup, helm_deploy):
        monkeypatch.setattr(module, "wait_for", fake.wait_for)
    monkeypatch.setattr(deployment, "DagsterWebserver", SimpleNamespace(
        through_service_proxy=lambda api, namespace, service, port: FakeWebserver(fake)))
    monkeypatch.setattr(helm_deploy, "run_helm", fake.run_helm)
    # What discovery reads back from the cluster: the settings the chart was just given.
    monkeypatch.setattr(helm_deploy, "described", lambda api, cfg: cfg)
    return fake


API: Any = object()


def resume_attempts(config: dict[str, Any]) -> int:
    return config["run_monitoring"]["max_resume_run_attempts"]


# --- the suite's own manifests -------------------------------------------------------------------------------------

def test_the_body_runs_on_the_changed_settings_and_the_original_ones_come_back(cluster: FakeCluster) -> None:
    original = Deployment(settings=settings(), api=API)

    with reconfigured(original, max_resume_run_attempts=1) as changed:
        assert changed.settings.max_resume_run_attempts == 1
        assert resume_attempts(cluster.current()) == 1  # the cluster runs the new config during the body
        assert changed.settings == replace(original.settings, max_resume_run_attempts=1)  # nothing else changed

    assert cluster.current() == manifests.instance_config(original.settings)
    assert original.settings.max_resume_run_attempts == 0  # the caller's description was never edited


def test_the_restore_applies_exactly_what_the_original_deployment_is_made_of(cluster: FakeCluster) -> None:
    original = Deployment(settings=settings(), api=API)
    groups = manifests.all_manifests(original.settings)
    expected = groups["foundation"] + groups["webserver"] + groups["daemon"] + groups["celery workers"]

    with reconfigured(original, webserver_replicas=2):
        assert cluster.applied[-1] != expected

    assert cluster.applied[-1] == expected  # same objects, same pod checksums: the pods roll back


def test_the_original_settings_come_back_when_the_body_raises(cluster: FakeCluster) -> None:
    original = Deployment(settings=settings(), api=API)

    with pytest.raises(RuntimeError, match="the test failed"), reconfigured(original, max_resume_run_attempts=1):
        assert resume_attempts(cluster.current()) == 1
        raise RuntimeError("the test failed")

    assert cluster.current() == manifests.instance_config(original.settings)
    assert [resume_attempts(config) for config in cluster.instance] == [1, 0]


def test_the_original_settings_come_back_when_the_new_config_never_rolls_out(cluster: FakeCluster) -> None:
    cluster.stuck_when = lambda config: resume_attempts(config) == 1
    original = Deployment(settings=settings(), api=API)
    body_ran = False

    with (pytest.raises(WaitTimeout, match=f"Deployment {NS}/{names.WEBSERVER} to roll out"),
          reconfigured(original, max_resume_run_attempts=1)):
        body_ran = True

    assert not body_ran
    assert cluster.current() == manifests.instance_config(original.settings)
    assert names.WEBSERVER in cluster.rolled  # the restored config did roll out


def test_each_control_plane_deployment_rolls_out_and_every_location_loads_before_the_body(
        cluster: FakeCluster) -> None:
    with reconfigured(Deployment(settings=settings(), api=API), max_resume_run_attempts=1):
        assert cluster.rolled == [names.WEBSERVER, names.DAEMON, names.CELERY_WORKERS]
        assert cluster.loaded == ["alpha"]
    assert cluster.rolled == [names.WEBSERVER, names.DAEMON, names.CELERY_WORKERS] * 2


def test_without_celery_no_worker_rollout_is_waited_for(cluster: FakeCluster) -> None:
    with reconfigured(Deployment(settings=settings("k8s-job"), api=API), max_resume_run_attempts=1):
        assert cluster.rolled == [names.WEBSERVER, names.DAEMON]


def test_someone_elses_dagster_is_never_reconfigured(cluster: FakeCluster) -> None:
    theirs = Deployment(settings=settings(owned=False), api=API)

    with pytest.raises(DeployError, match="was not deployed by the suite"), reconfigured(theirs, max_retries=3):
        pytest.fail("the body must not run")

    assert not cluster.applied and not cluster.helm_values


def test_an_unknown_setting_fails_before_anything_is_applied(cluster: FakeCluster) -> None:
    with pytest.raises(TypeError), reconfigured(Deployment(settings=settings(), api=API), no_such_setting=1):
        pass
    # replace() fails while building the new settings; only the original settings were applied again
    assert cluster.instance in ([], [manifests.instance_config(settings())])


# --- a chart install: helm upgrade with other values -----------------------------------------------------------

def helm_settings(tmp_path: Path, **changes: Any) -> DeploymentSettings:
    user = tmp_path / "user-values.yaml"
    user.write_text(yaml.safe_dump({"dagsterWebserver": {"annotations": {"team": "data"}}}))
    return settings(helm=HelmChart(chart=tmp_path / "dagster", values_file=user, busybox_image=BUSYBOX), **changes)


def test_a_chart_install_gets_the_changed_values_and_then_the_original_ones(cluster: FakeCluster,
                                                                            tmp_path: Path) -> None:
    original = Deployment(settings=helm_settings(tmp_path), api=API)

    with reconfigured(original, max_resume_run_attempts=1) as changed:
        ours, user = cluster.helm_values[-1]
        assert ours["dagsterDaemon"]["runMonitoring"]["maxResumeRunAttempts"] == 1
        assert user == {"dagsterWebserver": {"annotations": {"team": "data"}}}  # the user's file, after ours
        assert changed.settings.max_resume_run_attempts == 1
        assert not cluster.applied  # helm, not the suite's manifests

    assert cluster.helm_values[-1][0] == chart_values(original.settings, BUSYBOX)
    assert len(cluster.helm_values) == 2


def test_a_chart_install_gets_its_original_values_back_when_the_body_raises(cluster: FakeCluster,
                                                                           tmp_path: Path) -> None:
    original = Deployment(settings=helm_settings(tmp_path), api=API)

    with pytest.raises(AssertionError, match="run was not resumed"), reconfigured(original, max_resume_run_attempts=1):
        raise AssertionError("run was not resumed")

    restored = cluster.helm_values[-1][0]
    assert restored == chart_values(original.settings, BUSYBOX)
    assert restored["dagsterDaemon"]["runMonitoring"]["maxResumeRunAttempts"] == 0
    assert cluster.rolled == [names.WEBSERVER, names.DAEMON, names.CELERY_WORKERS] * 2


def test_a_chart_install_whose_new_values_never_roll_out_is_restored(cluster: FakeCluster, tmp_path: Path) -> None:
    cluster.stuck_when = lambda values: values["dagsterWebserver"]["replicaCount"] == 2
    original = Deployment(settings=helm_settings(tmp_path), api=API)

    with pytest.raises(WaitTimeout, match="to roll out"), reconfigured(original, webserver_replicas=2):
        pytest.fail("the body must not run")

    assert [values[0]["dagsterWebserver"]["replicaCount"] for values in cluster.helm_values] == [2, 1]


def test_a_restore_that_fails_too_never_hides_the_failure_of_the_test(cluster: FakeCluster) -> None:
    cluster.stuck_when = lambda config: True  # neither the new config nor the old one rolls out again
    original = Deployment(settings=settings(), api=API)

    with (pytest.raises(WaitTimeout, match="to roll out") as failure,
          reconfigured(original, max_resume_run_attempts=1)):
        pass

    assert any("restoring the instance settings" in note for note in getattr(failure.value, "__notes__", []))


def test_the_body_s_own_failure_is_what_a_failed_restore_leaves_raised(cluster: FakeCluster) -> None:
    original = Deployment(settings=settings(), api=API)

    with (pytest.raises(AssertionError, match="the run was not resumed") as failure,
          reconfigured(original, max_resume_run_attempts=1)):
        cluster.stuck_when = lambda config: True  # the restore will not roll out
        raise AssertionError("the run was not resumed")

    notes = getattr(failure.value, "__notes__", [])
    assert any(f"restoring the instance settings of {NS} failed too: WaitTimeout" in note for note in notes)
