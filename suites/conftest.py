"""Fixtures shared by the suites: a labelled namespace per test module, images loaded into the cluster."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client

from observation.kube import watch_until

SUITE_LABEL = "dkc.dagster.io/suite"


@pytest.fixture(scope="module")
def namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace, labelled as ours, deleted after the module (and waited for) unless --keep."""
    core = client.CoreV1Api(kube)
    module = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    name = f"dkc-{module}-{uuid.uuid4().hex[:6]}"[:63]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={SUITE_LABEL: module})))
    watch_until(core.list_namespaced_service_account, f"ServiceAccount {name}/default",
                lambda sa: sa.metadata.name == "default", 60, namespace=name)
    try:
        yield name
    finally:
        if not request.config.getoption("--keep"):
            core.delete_namespace(name, propagation_policy="Foreground")
