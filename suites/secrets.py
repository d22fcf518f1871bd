"""What the suites expect of secrets: no known secret value readable in a pod spec (C16); each code location's own
Secret (C31)."""

from __future__ import annotations

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from deploy.bringup import existing_secret_value
from deploy.deployment import Deployment
from deploy.settings import LOCATION_SECRET_ENV, location_secret
from observation.runs import STEP_ARGS_ENV, env_of, step_args_json
from reports.redact import register_secret


def plaintext_of(pod: client.V1Pod) -> list[tuple[str, str]]:
    """(where, text) for everything in a pod spec that a person with `get pods` can read."""
    found = []
    for container in pod.spec.containers + (pod.spec.init_containers or []):
        found += [(f"{container.name} command", " ".join(container.command or []))]
        found += [(f"{container.name} args", " ".join(container.args or []))]
        for name, value in env_of(container).items():
            found.append((f"{container.name} env {name}", value))
            if name == STEP_ARGS_ENV:
                found.append((f"{container.name} env {name} (decoded)", step_args_json(value)))
    return found


def location_secret_values(dagster: Deployment) -> dict[str, str | None]:
    """The value of each code location's own Secret (C31), for the locations that pass one, as the cluster holds
    it (None: the suite may not read it); registered for redaction."""
    values: dict[str, str | None] = {}
    for location in dagster.settings.code_locations:
        if location_secret(location.name) not in location.env_secrets:
            continue
        try:
            value = existing_secret_value(dagster.api, dagster.namespace, location_secret(location.name),
                                          LOCATION_SECRET_ENV)
        except ApiException as exc:
            if exc.status != 403:
                raise
            value = None
        register_secret(value)  # searched for, never shown
        values[location.name] = value
    return values


def searched_secrets(dagster: Deployment) -> dict[str, str]:
    """The secret values to search for, by what they are; an empty value is one the suite could not read."""
    return {"the Postgres password": dagster.settings.postgres_password,
            "the test Secret's value": dagster.settings.test_secret_value,
            **{f"code location {name}'s own Secret": value or ""
               for name, value in location_secret_values(dagster).items()}}


def leaks_in(dagster: Deployment, pods: list[client.V1Pod]) -> list[str]:
    """Where in these pods' specs a known secret value appears in plain text."""
    searched = searched_secrets(dagster)
    return [f"{label} in pod {pod.metadata.name} {where}"
            for pod in pods for where, text in plaintext_of(pod)
            for label, secret in searched.items() if secret and secret in text]


def skip_if_some_secret_unknown(dagster: Deployment) -> None:
    """After the search: a secret the suite could not read was not searched for, and the claim not proven for it."""
    unknown = [label for label, secret in searched_secrets(dagster).items() if not secret]
    if unknown:
        pytest.skip(f"no leak of the secrets read, but {' and '.join(unknown)} could not be read in "
                    f"{dagster.namespace} (the suite's identity needs get on its Secret), so not searched for")
