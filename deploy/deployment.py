"""The Deployment handle the suites talk to: where a Dagster is, what it is made of, and clients for it.

Made by bring-up (deploy.bringup, deploy.helm_deploy) or by discovery of a Dagster someone else deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from kubernetes import client

from dagster_api import DagsterWebserver
from deploy.errors import DeployError
from deploy.settings import DeploymentSettings
from observation.failures import kubernetes_cause, run_failure_cause
from observation.kube import current_pods_selector
from observation.runs import RunFootprint, footprint, running_after, step_reports

# Each sample workload exists once per executor: <workload>_<suffix>.
EXECUTOR_SUFFIX = {"k8s-multiprocess": "multiprocess", "k8s-job": "k8s", "celery-k8s": "celery"}


@dataclass
class Deployment:
    """A Dagster deployment the suites talk to: where it is, what it is made of, and clients for it."""

    settings: DeploymentSettings
    api: client.ApiClient

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    @property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api)

    @property
    def batch(self) -> client.BatchV1Api:
        return client.BatchV1Api(self.api)

    @property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api)

    @property
    def networking(self) -> client.NetworkingV1Api:
        return client.NetworkingV1Api(self.api)

    def job(self, workload: str) -> str:
        """The sample job ``workload`` built for this combination's executor (e.g. ``report_k8s``)."""
        return f"{workload}_{EXECUTOR_SUFFIX[self.settings.combination]}"

    def run_to_success(self, workload: str, location: str | None = None, timeout: float = 300.0,
                       tags: dict[str, str] | None = None) -> str:
        """Launch the combination's ``workload`` job over GraphQL and wait for SUCCESS; returns the run id."""
        location = location or self.settings.code_locations[0].name
        run_id = self.webserver.launch_run(self.job(workload), location, tags=tags)
        self.webserver.wait_for_run_status(run_id, ["SUCCESS"], timeout=timeout)
        return run_id

    def footprint(self, run_id: str) -> RunFootprint:
        """The run's Jobs and pods in this namespace (run worker, steps, external jobs)."""
        return footprint(self.core, self.batch, self.namespace, run_id)

    def running_after(self, run_id: str, grace: float) -> list[str]:
        """What of the run still runs after ``grace`` seconds (nothing, as soon as all of it stopped)."""
        return running_after(self.core, self.batch, self.namespace, run_id, grace)

    def step_reports(self, run_id: str) -> dict[str, dict[str, Any]]:
        """What each ``report`` step of the run saw in its own process, by step key."""
        return step_reports(self.webserver, run_id)

    @cached_property
    def webserver(self) -> DagsterWebserver:
        """GraphQL to the webserver Service through the apiserver's proxy, as the suite's identity."""
        parts = self.settings.names
        webserver = DagsterWebserver.through_service_proxy(self.api, self.namespace, parts.webserver_service,
                                                           parts.webserver_port)
        webserver.explain_run = lambda run_id: run_failure_cause(
            lambda: webserver.run_events(run_id),
            lambda: kubernetes_cause(self.core, self.batch, self.namespace, run_id))
        return webserver

    def celery_worker_pods(self) -> str:
        """A label selector for the Celery worker pods, as the cluster runs them now."""
        if not self.settings.names.celery_workers:
            raise DeployError(f"no Celery worker Deployment is known in {self.namespace}")
        return current_pods_selector(self.apps, self.namespace, self.settings.names.celery_workers)

    @property
    def chaos_variables(self) -> dict[str, str]:
        """The ``--var`` values the experiment files need to find this deployment's parts."""
        parts = self.settings.names
        return {"namespace": self.namespace, "webserver_service": parts.webserver_service,
                "webserver_port": str(parts.webserver_port)}
