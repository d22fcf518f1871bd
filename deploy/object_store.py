"""An S3-compatible object store in the deployment's namespace, for compute logs on a cluster of several nodes.

On one node, run pods, step pods and the webserver share a node directory (LocalComputeLogManager). Across nodes
they cannot: a step pod's stdout written on one node is out of the webserver's reach on another. Users then use
an object store; here it is gofakes3 (an S3 API server in Go, built from its module, in-memory, one bucket made at
start), with dagster-aws's S3ComputeLogManager pointed at its Service. gofakes3 checks no signature, but boto3
signs every request, so the Dagster pods get a placeholder key pair from a Secret of their own.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from clusters.local import build
from deploy import names, objects
from deploy.objects import Manifest
from deploy.settings import COMPUTE_LOG_DIR, DeploymentSettings
from images import oci

GOFAKES3_VERSION = "v1.2.0"
NAME = "dkc-object-store"  # its Deployment and Service
COMPONENT = "object-store"
PORT = 9000
BUCKET = "dagster-compute-logs"
CREDENTIALS_SECRET = "dkc-object-store-credentials"
REGION = "us-east-1"
# boto3 >= 1.36 sends checksummed, aws-chunked uploads by default, which S3-compatible servers other than AWS's
# may store as they came: only when the operation requires one.
CLIENT_ENV = {"AWS_DEFAULT_REGION": REGION, "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required",
              "AWS_RESPONSE_CHECKSUM_VALIDATION": "when_required"}
BINARY = "/usr/local/bin/gofakes3"


def gofakes3_build(version: str = GOFAKES3_VERSION) -> build.GoBuild:
    module = "github.com/johannesboyne/gofakes3"
    return build.GoBuild(name="gofakes3", module=module, version=version,
                         binaries={"gofakes3": f"{module}/cmd/gofakes3"})


def image() -> tuple[str, Path]:
    """``local/gofakes3:<version>``: the static binary alone, built once per version into the cache."""
    binary = build.ensure_built(gofakes3_build()) / "gofakes3"
    spec = oci.ImageSpec(name=f"local/gofakes3:{GOFAKES3_VERSION}", entrypoint=[BINARY], env={})

    def layer(out: Path) -> None:
        oci.write_layer_from_files([(BINARY, binary, 0o755)], out)

    return spec.reference, oci.cached_image(spec, [binary.parent.name, BINARY], layer)


def endpoint_url(cfg: DeploymentSettings) -> str:
    return f"http://{NAME}.{cfg.namespace}.svc:{PORT}"


def compute_log_manager(cfg: DeploymentSettings) -> dict[str, Any]:
    """dagster.yaml's compute_logs: S3ComputeLogManager on our store; logs staged in the pods' compute-log dir."""
    return {"module": "dagster_aws.s3.compute_log_manager", "class": "S3ComputeLogManager",
            "config": {"bucket": BUCKET, "prefix": cfg.namespace, "endpoint_url": endpoint_url(cfg),
                       "use_ssl": False, "local_dir": COMPUTE_LOG_DIR, "region": REGION}}


def env_from() -> list[dict[str, Any]]:
    """What a Dagster pod that reads or writes compute logs adds to its envFrom."""
    return [{"secretRef": {"name": CREDENTIALS_SECRET}}]


def manifests(cfg: DeploymentSettings) -> list[Manifest]:
    """The store's Deployment and Service, and the client Secret (a placeholder pair, the same on every apply)."""
    ns = cfg.namespace
    pod = {"containers": [{
        "name": "gofakes3", "image": cfg.images.object_store, "imagePullPolicy": cfg.image_pull_policy,
        "args": ["-backend", "memory", "-initialbucket", BUCKET, "-host", f":{PORT}", "-quiet"],
        "ports": [{"containerPort": PORT}],
        "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 2},
    }]}
    placeholder = hashlib.sha256(f"{NAME}/{ns}".encode()).hexdigest()
    credentials = {"AWS_ACCESS_KEY_ID": f"dkc{placeholder[:13]}", "AWS_SECRET_ACCESS_KEY": placeholder[13:53],
                   **CLIENT_ENV}
    return [
        {"apiVersion": "v1", "kind": "Secret", "metadata": objects.meta(CREDENTIALS_SECRET, ns, COMPONENT),
         "type": "Opaque", "stringData": credentials},
        objects.deployment(NAME, ns, COMPONENT, pod, strategy="Recreate"),
        objects.service(NAME, ns, COMPONENT, PORT, PORT),
    ]


def selector() -> str:
    return names.selector(COMPONENT)
