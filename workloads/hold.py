"""The test's side of the hold workload: a held op finishes once the test creates its release ConfigMap."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from kubernetes import client

from deploy.bringup import Deployment
from workloads.locations.conformance.definitions import RELEASE_CONFIG_MAP

# Release ConfigMaps carry this process's session, so a session removes exactly what it made (also in a namespace
# the suite does not own, where nothing else may be deleted).
SESSION_LABEL = "dkc.dagster.io/session"
SESSION = uuid.uuid4().hex[:12]


def release(core: client.CoreV1Api, namespace: str, run_id: str) -> None:
    """Let the held op of ``run_id`` finish; releasing twice is fine."""
    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=RELEASE_CONFIG_MAP.format(run_id=run_id),
                                                           labels={SESSION_LABEL: SESSION}))
    try:
        core.create_namespaced_config_map(namespace, body)
    except client.ApiException as exc:
        if exc.status != 409:  # already released
            raise


@contextmanager
def holding(dagster: Deployment, location: str | None = None, tags: dict[str, str] | None = None) -> Iterator[str]:
    """Launch the hold job, wait until its run is STARTED, yield its id; release it afterwards whatever happened."""
    run_id = dagster.webserver.launch_run(dagster.job("hold"), location or dagster.settings.code_locations[0].name,
                                          tags=tags)
    try:
        dagster.webserver.wait_for_run_status(run_id, ["STARTED"], timeout=180)
        yield run_id
    finally:
        release(dagster.core, dagster.namespace, run_id)


def remove_releases(core: client.CoreV1Api, namespace: str) -> int:
    """Delete the release ConfigMaps this session made in ``namespace``; returns how many."""
    made = core.list_namespaced_config_map(namespace, label_selector=f"{SESSION_LABEL}={SESSION}").items
    for config_map in made:
        try:
            core.delete_namespaced_config_map(config_map.metadata.name, namespace)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
    return len(made)
