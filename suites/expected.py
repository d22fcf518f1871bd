"""What the suites expect a code location to pass on: its env vars, in pod specs and inside processes."""

from __future__ import annotations

import hashlib

from kubernetes import client

from deploy import settings
from deploy.deployment import Deployment
from observation.runs import env_of, env_sources


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def expected_env(dagster: Deployment) -> dict[str, str]:
    """Each env var the code location sets, and the value its pods' processes must see."""
    return {settings.PLAIN_ENV[0]: settings.PLAIN_ENV[1], settings.CONFIG_MAP_ENV[0]: settings.CONFIG_MAP_ENV[1],
            settings.SECRET_ENV_NAME: dagster.settings.test_secret_value}


def missing_from_spec(pod: client.V1Pod) -> list[str]:
    """The suite's env vars a pod spec does not provide (neither literally nor through envFrom)."""
    container = pod.spec.containers[0]
    env = env_of(container)
    config_maps, secrets = env_sources(container)
    missing = []
    if env.get(settings.PLAIN_ENV[0]) != settings.PLAIN_ENV[1]:
        missing.append(f"{settings.PLAIN_ENV[0]} (plain; env has {env.get(settings.PLAIN_ENV[0])!r})")
    if settings.TEST_ENV_CONFIG_MAP not in config_maps and settings.CONFIG_MAP_ENV[0] not in env:
        missing.append(f"{settings.CONFIG_MAP_ENV[0]} (ConfigMap {settings.TEST_ENV_CONFIG_MAP}; "
                       f"envFrom {config_maps})")
    if settings.TEST_ENV_SECRET not in secrets and settings.SECRET_ENV_NAME not in env:
        missing.append(f"{settings.SECRET_ENV_NAME} (Secret {settings.TEST_ENV_SECRET}; envFrom secrets {secrets})")
    return missing


def wrong_in_process(dagster: Deployment, report: dict) -> list[str]:
    return [f"{name} ({'unset' if report.get(f'env {name}') == 'unset' else 'wrong value'})"
            for name, value in expected_env(dagster).items() if report.get(f"env {name}") != sha256(value)]
