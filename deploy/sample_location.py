"""What a user adds to a Dagster they deployed with the official Helm chart so the suites can run against it.

The suite launches its sample jobs from its own code locations (alpha and beta), which pass a plain env var, a
ConfigMap and a Secret to their runs (C10), and each a Secret of its own (C31). ``values_snippet`` is the chart
values for them, ``secret_commands`` the kubectl commands that create that ConfigMap and those Secrets. Field
names follow the chart's values schema for ``dagster-user-deployments.deployments`` (envConfigMaps / envSecrets
hold ConfigMapEnvSource / SecretEnvSource objects, i.e. ``{name: ...}``, not plain strings).
"""

from __future__ import annotations

import secrets
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from common.errors import PreflightError
from common.progress import phase
from deploy import settings as s
from deploy.errors import DeployError
from deploy.images import LOCATION_NAMES, code_locations
from deploy.settings import CodeLocation

__all__ = ["publish_sample_locations", "push_image", "secret_commands", "split_image", "values_snippet"]

SECRET_PREFIX = "dkc-secret-"
HEADER = """\
# The suite's sample code locations, for the official Dagster Helm chart. Helm replaces lists instead of
# merging them: if your values already list dagster-user-deployments.deployments, add these entries to it.
"""


def split_image(image: str) -> tuple[str, str]:
    """``repo:tag`` -> (repo, tag); the chart builds the image as ``repository:tag``, so a tag is required."""
    repository, sep, tag = image.rpartition(":")
    if "@" in image or not sep or "/" in tag:  # a digest, or no tag (the colon was a registry port)
        raise ValueError(f"image {image!r} needs a tag (repo:tag): the chart's image field has no digest")
    return repository, tag


def _deployment(location: CodeLocation, pull_policy: str) -> dict[str, Any]:
    repository, tag = split_image(location.image)
    return {
        "name": location.name,
        "image": {"repository": repository, "tag": tag, "pullPolicy": pull_policy},
        "dagsterApiGrpcArgs": ["-f", location.python_file],
        "port": s.GRPC_PORT,
        "env": [{"name": name, "value": value} for name, value in location.env],
        "envConfigMaps": [{"name": name} for name in location.env_config_maps],
        "envSecrets": [{"name": name} for name in location.env_secrets],
    }


def values_snippet(locations: list[tuple[str, str]], pull_policy: str = "IfNotPresent") -> str:
    """Helm values adding the suite's code locations, given as (name, "repo:tag") pairs, to the official chart."""
    deployments = [_deployment(location, pull_policy) for location in code_locations(locations)]
    body = yaml.safe_dump({"dagster-user-deployments": {"deployments": deployments}}, sort_keys=False)
    return HEADER + body


def secret_commands(namespace: str, secret_value: str | None = None) -> str:
    """kubectl commands creating the ConfigMap and the Secrets the sample locations pass to runs, labelled as ours.

    The Secret's value is random unless given: the suite searches pods and reports for it (C16).
    """
    value = secret_value or SECRET_PREFIX + secrets.token_hex(16)
    ns, label = shlex.quote(namespace), f"{s.MANAGED_LABEL}=dkc"
    config_map, secret = s.TEST_ENV_CONFIG_MAP, s.TEST_ENV_SECRET
    literal_cm = shlex.quote(f"{s.CONFIG_MAP_ENV[0]}={s.CONFIG_MAP_ENV[1]}")
    literal_secret = shlex.quote(f"{s.SECRET_ENV_NAME}={value}")
    lines = [
        f"kubectl -n {ns} create configmap {config_map} --from-literal={literal_cm}",
        f"kubectl -n {ns} label configmap {config_map} {label}",
        f"kubectl -n {ns} create secret generic {secret} --from-literal={literal_secret}",
        f"kubectl -n {ns} label secret {secret} {label}",
    ]
    for location in LOCATION_NAMES:  # each location's own (C31)
        own = s.location_secret(location)
        literal_own = shlex.quote(f"{s.LOCATION_SECRET_ENV}={s.location_secret_value(value, location)}")
        lines += [f"kubectl -n {ns} create secret generic {own} --from-literal={literal_own}",
                  f"kubectl -n {ns} label secret {own} {label}"]
    return "\n".join(lines) + "\n"


def push_image(archive: Path, reference: str, registry: str, tls_verify: bool = True) -> str:
    """Copy an OCI archive to ``registry`` with skopeo; returns the pushed ``registry/name:tag``."""
    skopeo = shutil.which("skopeo")
    if not skopeo:
        raise PreflightError("skopeo is not installed: apt-get install skopeo (it pushes the OCI archives)")
    target = f"{registry.rstrip('/')}/{reference.split('/', 1)[-1]}"
    done = subprocess.run([skopeo, "copy", f"--dest-tls-verify={str(tls_verify).lower()}", f"oci-archive:{archive}",
                           f"docker://{target}"], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = ((done.stderr or done.stdout).strip().splitlines() or ["no output"])[-1]
        raise DeployError(f"pushing {target} failed: {last}")
    return target


def publish_sample_locations(namespace: str, dagster_version: str | None = None, registry: str | None = None,
                             tls_verify: bool = True) -> str:
    """Build the sample code location images (cached), push them if a registry is named, and return what to add
    to the chart's values and which kubectl lines create the env ConfigMap and Secret."""
    from images import dagster as dagster_images

    version = dagster_version or dagster_images.DAGSTER_VERSION
    images, archives = [], []
    for name in LOCATION_NAMES:
        with phase(f"Building the image of sample code location {name} (Dagster {version})"):
            reference, archive = dagster_images.sample_location_image(name, version)
        if registry:
            with phase(f"Pushing {reference} to {registry}"):
                reference = push_image(archive, reference, registry, tls_verify)
        images.append((name, reference))
        archives.append(f"#   {reference}: {archive}")
    where = ("# Pushed to " + registry) if registry else (
        "# Not pushed (no --push): load these OCI archives into every node, e.g. `kind load image-archive`:\n"
        + "\n".join(archives))
    policy = "IfNotPresent" if registry else "Never"
    return "\n".join([where, values_snippet(images, pull_policy=policy),
                      "# Then create the ConfigMap and Secrets the sample locations pass to their runs:",
                      secret_commands(namespace)])
