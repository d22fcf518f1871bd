"""Self-tests of deploy.bringup.deploy's control flow: the order of its phases and gates, and teardown on failure.

No cluster: the module's boundaries are replaced (namespace creation, the data volume, server-side apply, the
readiness look of a gate, the gates' clock, the last log lines, the GraphQL client, teardown); the real phases,
gates and error handling run between them and what the fake cluster was asked is recorded in order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

import pytest

from clusters import manifests as kube_manifests
from common import waits
from common.waits import Observation, WaitTimeout
from deploy import bringup, deployment, postgres_storage
from deploy.errors import DeployError
from deploy.images import code_locations
from deploy.settings import DeploymentSettings, Images, PostgresVolume
from tests.fakes import FakeClock

NS = "dkc-flow"
VOLUME = PostgresVolume(name=f"{NS}-postgresql-ab12", hostname="node-1", host_path=f"/var/tmp/pg/{NS}-ab12")
CRASHING = ("dagster-dagster-webserver: 0 updated, 0 available, 1 in all, of 1; pods: dagster-dagster-webserver-7d9 "
            "Running; dagster-webserver: waiting CrashLoopBackOff back-off 40s restarting failed container")


def settings(combination: str = "celery-k8s", **changes: Any) -> DeploymentSettings:
    images = Images(dagster="local/dagster:1", postgres="local/postgres:15", broker="local/redis:7")
    cfg = DeploymentSettings(combination=combination, namespace=NS, images=images,
                             code_locations=code_locations([("alpha", "local/alpha:1"), ("beta", "local/beta:1")]),
                             postgres_password="pw", test_secret_value="s3cret")
    return replace(cfg, **changes)



def part(selector: str) -> str:
    """``postgresql``, ``user-deployments/alpha``, ...: which part a gate's label selector looks at."""
    labels = dict(pair.split("=", 1) for pair in selector.split(","))
    return labels["component"] + (f"/{labels['deployment']}" if "deployment" in labels else "")


@dataclass
class FakeCluster:
    """What deploy() asked for, in order, and how the fake answers: parts never ready, a Ctrl-C at a part."""

    events: list[tuple[str, ...]] = field(default_factory=list)
    applied: list[list[dict[str, Any]]] = field(default_factory=list)
    torn_down: list[DeploymentSettings] = field(default_factory=list)
    never_ready: dict[str, str] = field(default_factory=dict)  # part -> what its gate keeps seeing
    interrupt_at: str | None = None  # part whose gate gets Ctrl-C
    not_loading: str | None = None  # code location the webserver never loads
    clock: FakeClock = field(default_factory=FakeClock)

    def record(self, *event: str) -> None:
        if not self.events or self.events[-1] != event:  # a gate polling the same part is one event
            self.events.append(event)

    def apply(self, api: Any, documents: list[dict[str, Any]], namespace: str | None = None) -> list[str]:
        self.applied.append(documents)
        self.record("apply", *[d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"])
        return [f"{d['kind']}/{d['metadata']['name']}" for d in documents]

    def available(self, api: Any, namespace: str, selector: str) -> Observation[None]:
        what = part(selector)
        self.record("ready?", what)
        if what == self.interrupt_at:
            raise KeyboardInterrupt
        if what in self.never_ready:
            return Observation(False, self.never_ready[what])
        return Observation(True, f"{what} rolled out")

    def wait_for(self, description: str, look: Callable[[], Observation[Any]], timeout: float,
                 interval: float = 1.0) -> Any:
        return waits.wait_for(description, look, timeout, interval, clock=self.clock, sleep=self.clock.sleep)

    def teardown(self, api: Any, *deployments: DeploymentSettings, timeout: float = 180.0) -> None:
        self.torn_down.extend(deployments)
        self.record("teardown", *[cfg.namespace for cfg in deployments])


class FakeWebserver:
    def __init__(self, cluster: FakeCluster) -> None:
        self.cluster = cluster

    def wait_until_answering(self, timeout: float, interval: float = 1.0) -> str:
        self.cluster.record("graphql answering")
        return "1.x"

    def reload_location(self, name: str) -> None:
        self.cluster.record("reload", name)

    def wait_for_location_loaded(self, name: str, timeout: float, interval: float = 2.0,
                                 reload_on_error: bool = False) -> None:
        if name == self.cluster.not_loading:
            raise WaitTimeout(f"code location {name} to load", timeout, "LOADING_ERROR ModuleNotFoundError: alpha")
        self.cluster.record("loaded", name)


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    fake = FakeCluster()
    monkeypatch.setattr(bringup, "create_namespace", lambda api, cfg: fake.record("namespace", cfg.namespace))
    monkeypatch.setattr(postgres_storage, "ensure_volume", lambda api, cfg: VOLUME)
    monkeypatch.setattr(kube_manifests, "apply", fake.apply)
    monkeypatch.setattr(bringup, "deployment_available", fake.available)
    monkeypatch.setattr(bringup, "wait_for", fake.wait_for)
    monkeypatch.setattr(bringup, "last_log_lines",
                        lambda api, namespace, selector, lines=3: f"{part(selector)}-pod: Traceback | boom")
    monkeypatch.setattr(deployment, "DagsterWebserver", SimpleNamespace(
        through_service_proxy=lambda api, namespace, service, port: FakeWebserver(fake)))
    monkeypatch.setattr(bringup, "teardown", fake.teardown)
    return fake


API: Any = object()  # never used by the fakes: deploy only passes it on


# --- the order ---------------------------------------------------------------------------------------------------

def test_storage_comes_up_first_then_the_code_locations_then_the_control_plane(cluster: FakeCluster) -> None:
    deployment = bringup.deploy(API, settings())

    assert cluster.events == [
        ("namespace", NS),
        ("apply",),  # the foundation: accounts, Secrets, ConfigMaps; nothing runs yet
        ("apply", "dagster-postgresql", "dagster-redis"),
        ("ready?", "postgresql"), ("ready?", "redis"),
        ("apply", "dagster-dagster-user-deployments-alpha"),
        ("apply", "dagster-dagster-user-deployments-beta"),
        ("ready?", "user-deployments/alpha"), ("ready?", "user-deployments/beta"),
        ("apply", "dagster-dagster-webserver", "dagster-daemon", "dagster-celery-workers"),
        ("ready?", "dagster-webserver"), ("ready?", "dagster-daemon"), ("ready?", "celery"),
        ("graphql answering",),
        ("reload", "alpha"), ("loaded", "alpha"), ("reload", "beta"), ("loaded", "beta"),
    ]
    assert deployment.settings.postgres_volume == VOLUME  # the deployment knows where its data is
    assert not cluster.torn_down


def test_the_foundation_holds_the_instance_config_and_the_secrets_before_anything_runs(cluster: FakeCluster) -> None:
    bringup.deploy(API, settings())

    first = {(d["kind"], d["metadata"]["name"]) for d in cluster.applied[0]}
    assert {("ConfigMap", "dagster-instance"), ("Secret", "dagster-postgresql-secret"),
            ("ServiceAccount", "dagster")} <= first
    assert not any(kind == "Deployment" for kind, _ in first)


def test_without_celery_there_is_no_broker_and_no_workers_to_wait_for(cluster: FakeCluster) -> None:
    bringup.deploy(API, settings("k8s-job"))

    asked = [event for event in cluster.events if event[0] in ("apply", "ready?")]
    assert ("apply", "dagster-postgresql") in asked
    assert ("apply", "dagster-dagster-webserver", "dagster-daemon") in asked
    assert not any("redis" in " ".join(event) or "celery" in " ".join(event) for event in asked)


def test_no_code_location_is_waited_for_before_every_one_was_applied(cluster: FakeCluster) -> None:
    """Locations start together (each gate would otherwise add a location's whole start-up time)."""
    bringup.deploy(API, settings())

    applied = [i for i, e in enumerate(cluster.events) if e[0] == "apply" and "user-deployments" in " ".join(e)]
    waited = [i for i, e in enumerate(cluster.events) if e[0] == "ready?" and e[1].startswith("user-deployments")]
    assert max(applied) < min(waited)


# --- failures and Ctrl-C -----------------------------------------------------------------------------------------

def test_a_webserver_never_ready_fails_in_one_line_naming_it_and_deletes_the_namespace(cluster: FakeCluster) -> None:
    cluster.never_ready = {"dagster-webserver": CRASHING}

    with pytest.raises(DeployError) as failure:
        bringup.deploy(API, settings())

    message = str(failure.value)
    assert "\n" not in message
    assert f"timed out after {bringup.READY_TIMEOUT:.0f}s waiting for the webserver to be ready in {NS}" in message
    assert "CrashLoopBackOff" in message  # why it is not ready, as last seen
    assert "last log lines: dagster-webserver-pod: Traceback | boom" in message
    assert cluster.events[-2:] == [("ready?", "dagster-webserver"), ("teardown", NS)]
    assert ("ready?", "dagster-daemon") not in cluster.events  # nothing after the failed gate
    assert [cfg.postgres_volume for cfg in cluster.torn_down] == [VOLUME]  # teardown clears the volume it made
    assert cluster.clock.now >= bringup.READY_TIMEOUT  # the gate waited its whole deadline (on the fake clock)


@pytest.mark.parametrize("part_name, component", [("postgresql", "PostgreSQL"), ("redis", "the Celery broker"),
                                                   ("user-deployments/beta", "code location beta"),
                                                   ("dagster-daemon", "the daemon"), ("celery", "the Celery workers")])
def test_every_gate_names_its_component_when_it_fails(cluster: FakeCluster, part_name: str, component: str) -> None:
    cluster.never_ready = {part_name: "0 available"}

    with pytest.raises(DeployError, match=f"waiting for {component} to be ready in {NS}; last seen: 0 available"):
        bringup.deploy(API, settings())
    assert cluster.events[-1] == ("teardown", NS)


def test_a_location_that_never_loads_in_the_webserver_is_named_with_its_logs(cluster: FakeCluster) -> None:
    cluster.not_loading = "beta"

    with pytest.raises(DeployError) as failure:
        bringup.deploy(API, settings())

    message = str(failure.value)
    assert message.startswith("code location beta did not load: ")
    assert "ModuleNotFoundError" in message and "last log lines: user-deployments/beta-pod" in message
    assert "\n" not in message
    assert cluster.events[-1] == ("teardown", NS)


def test_ctrl_c_mid_bring_up_deletes_the_namespace_and_still_stops(cluster: FakeCluster) -> None:
    cluster.interrupt_at = "user-deployments/beta"

    with pytest.raises(KeyboardInterrupt):
        bringup.deploy(API, settings())

    assert cluster.events[-2:] == [("ready?", "user-deployments/beta"), ("teardown", NS)]
    assert not any(e[0] == "apply" and "dagster-dagster-webserver" in e for e in cluster.events)


def test_a_failure_before_the_volume_exists_still_deletes_the_namespace(cluster: FakeCluster,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    def no_node(api: Any, cfg: DeploymentSettings) -> PostgresVolume:
        raise DeployError("no Ready, untainted node for PostgreSQL's data volume")

    monkeypatch.setattr(postgres_storage, "ensure_volume", no_node)

    with pytest.raises(DeployError, match="no Ready, untainted node"):
        bringup.deploy(API, settings())
    assert cluster.events == [("namespace", NS), ("teardown", NS)]
    assert cluster.torn_down[0].postgres_volume is None


def test_keep_leaves_the_namespace_of_a_failed_bring_up(cluster: FakeCluster) -> None:
    cluster.never_ready = {"dagster-webserver": CRASHING}

    with pytest.raises(DeployError, match="the webserver"):
        bringup.deploy(API, settings(), keep=True)
    assert not cluster.torn_down
    assert ("teardown", NS) not in cluster.events


def test_keep_leaves_the_namespace_on_ctrl_c_too(cluster: FakeCluster) -> None:
    cluster.interrupt_at = "postgresql"

    with pytest.raises(KeyboardInterrupt):
        bringup.deploy(API, settings(), keep=True)
    assert not cluster.torn_down


def test_a_teardown_that_fails_too_never_hides_why_the_bring_up_failed(cluster: FakeCluster,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.never_ready = {"dagster-webserver": CRASHING}

    def stuck_teardown(api: Any, *deployments: DeploymentSettings, timeout: float = 180.0) -> None:
        raise WaitTimeout(f"namespace {NS} to be deleted", timeout, "Terminating")

    monkeypatch.setattr(bringup, "teardown", stuck_teardown)

    with pytest.raises(DeployError, match="waiting for the webserver") as failure:
        bringup.deploy(API, settings())

    assert any(f"deleting {NS} failed too: WaitTimeout" in note for note in getattr(failure.value, "__notes__", []))
