"""Before the first test on a Dagster someone else deployed: can it run this combination at all?

What discovery read decides up front, in one line naming the part and the fix, instead of tests that time out:
a daemon with no ready replica dequeues and monitors nothing; celery-k8s steps wait forever without a ready
Celery worker; a code location the webserver has not loaded (or holds a stale copy of, right after a rollout)
fails every launch with PipelineNotFoundError.
"""

from __future__ import annotations

from contextlib import suppress

from kubernetes import client

from common.errors import DkcError
from common.waits import WaitTimeout
from dagster_api import DagsterApiError, DagsterWebserver
from deploy.settings import DeploymentSettings

LOCATION_LOAD_TIMEOUT = 180.0


class NotReady(DkcError):
    """The deployment cannot run a combination now: which part, what was seen, what to do."""


def ready_replicas(apps: client.AppsV1Api, namespace: str, name: str) -> tuple[int, int]:
    """(ready, wanted) replicas of a Deployment."""
    found = apps.read_namespaced_deployment(name, namespace)
    wanted = 1 if found.spec.replicas is None else found.spec.replicas
    return found.status.ready_replicas or 0, wanted


def part_problems(apps: client.AppsV1Api, cfg: DeploymentSettings) -> list[str]:
    """The parts of the control plane the combination needs that have no ready pod."""
    names = cfg.names
    needed = [("webserver", names.webserver, "nothing answers GraphQL"),
              ("daemon", names.daemon, "no run is dequeued, retried or monitored")]
    if cfg.uses_celery:
        if not names.celery_workers:
            return [f"no Celery worker Deployment found in {cfg.namespace}: celery-k8s steps would wait forever "
                    f"(pass --celery-selector)"]
        needed.append(("Celery workers", names.celery_workers, "celery-k8s steps would wait forever"))
    problems = []
    for part, name, effect in needed:
        ready, wanted = ready_replicas(apps, cfg.namespace, name)
        if ready == 0:
            problems.append(f"the {part} (Deployment {cfg.namespace}/{name}) has {ready}/{wanted} ready replicas: "
                            f"{effect} (scale it up or fix its pods)")
    return problems


def load_locations(webserver: DagsterWebserver, cfg: DeploymentSettings,
                   timeout: float = LOCATION_LOAD_TIMEOUT) -> None:
    """Reload each of the suite's code locations (a webserver may hold the copy of a server a rollout replaced)
    and wait until it is loaded; one that stays in error stops here with the location's own load error."""
    for location in cfg.code_locations:
        with suppress(DagsterApiError):  # a failed reload shows as a load error below
            webserver.reload_location(location.name)
        try:
            webserver.wait_for_location_loaded(location.name, timeout, reload_on_error=True)
        except WaitTimeout as exc:
            raise NotReady(f"code location {location.name} is not loaded in the webserver of {cfg.namespace} "
                           f"after {timeout:.0f}s: {exc.last_seen}") from exc


def check_can_run(apps: client.AppsV1Api, webserver: DagsterWebserver, cfg: DeploymentSettings) -> None:
    """Raise NotReady naming every part that keeps ``cfg.combination`` from running in someone else's deployment."""
    problems = part_problems(apps, cfg)
    if problems:
        raise NotReady(f"{cfg.combination} cannot run in {cfg.namespace}: {'; '.join(problems)}")
    load_locations(webserver, cfg)
