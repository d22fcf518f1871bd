"""Self-tests for deploy.preflight: what keeps someone else's Dagster from running a combination, in one line."""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client

from common.waits import WaitTimeout
from dagster_api import LocationStatus
from deploy import preflight
from deploy.settings import CodeLocation, DeploymentSettings, Images, ObjectNames


class FakeApps:
    def __init__(self, ready: dict[str, int]) -> None:
        self.ready = ready

    def read_namespaced_deployment(self, name: str, namespace: str) -> client.V1Deployment:
        return client.V1Deployment(spec=client.V1DeploymentSpec(replicas=2, selector=client.V1LabelSelector(),
                                                                template=client.V1PodTemplateSpec()),
                                   status=client.V1DeploymentStatus(ready_replicas=self.ready.get(name)))


def settings(combination: str, celery_workers: str | None = "workers") -> DeploymentSettings:
    return DeploymentSettings(combination=combination, namespace="team", images=Images("img", ""),
                              code_locations=(CodeLocation("alpha", "img:a", "x.py"),),
                              names=ObjectNames(webserver="web", daemon="daemon", celery_workers=celery_workers),
                              owned=False)


def test_celery_workers_scaled_to_zero_stop_the_combination_in_one_line() -> None:
    apps: Any = FakeApps({"web": 1, "daemon": 1, "workers": 0})
    with pytest.raises(preflight.NotReady) as failure:
        preflight.check_can_run(apps, None, settings("celery-k8s"))  # type: ignore[arg-type]
    assert str(failure.value) == (
        "celery-k8s cannot run in team: the Celery workers (Deployment team/workers) has 0/2 ready replicas: "
        "celery-k8s steps would wait forever (scale it up or fix its pods)")


def test_a_daemon_without_a_ready_pod_is_named_and_workers_do_not_matter_without_celery() -> None:
    apps: Any = FakeApps({"web": 1, "daemon": 0})
    assert preflight.part_problems(apps, settings("k8s-job", celery_workers=None)) == [
        "the daemon (Deployment team/daemon) has 0/2 ready replicas: no run is dequeued, retried or monitored "
        "(scale it up or fix its pods)"]


class FakeWebserver:
    def __init__(self, error: str | None) -> None:
        self.error, self.reloads = error, 0

    def reload_location(self, name: str) -> None:
        self.reloads += 1

    def wait_for_location_loaded(self, name: str, timeout: float, reload_on_error: bool) -> LocationStatus:
        if self.error:
            raise WaitTimeout(f"code location {name} to load", timeout, f"{name} LOADED: {self.error}")
        return LocationStatus(name, "LOADED", None)


def test_locations_are_reloaded_first_and_a_load_error_is_the_line() -> None:
    fine = FakeWebserver(None)
    preflight.load_locations(fine, settings("k8s-job"))  # type: ignore[arg-type]
    assert fine.reloads == 1
    broken = FakeWebserver("ModuleNotFoundError: No module named 'dkc'")
    with pytest.raises(preflight.NotReady, match=r"code location alpha is not loaded .*: alpha LOADED: "
                                                 r"ModuleNotFoundError"):
        preflight.load_locations(broken, settings("k8s-job"), timeout=1)  # type: ignore[arg-type]
