"""What the suite's identity must be allowed in the namespace of a Dagster someone else deployed, asked before
anything runs (SelfSubjectAccessReview)."""

from __future__ import annotations

from kubernetes import client

from clusters.readiness import denied_access

__all__ = ["CHAOS_ACCESS", "NAMESPACED_ACCESS", "missing_access"]

REQUEST_TIMEOUT = 15

# What the suites do in the namespace (verb, API group, resource). GraphQL goes through the apiserver's service
# proxy: GET is `get services/proxy`, POST (every query) is `create services/proxy`.
NAMESPACED_ACCESS: tuple[tuple[str, str, str], ...] = (
    ("get", "", "pods"), ("list", "", "pods"), ("watch", "", "pods"), ("get", "", "pods/log"),
    ("get", "batch", "jobs"), ("list", "batch", "jobs"), ("watch", "batch", "jobs"),
    ("get", "apps", "deployments"), ("list", "apps", "deployments"),
    ("get", "", "configmaps"), ("list", "", "configmaps"),
    ("create", "batch", "jobs"), ("delete", "batch", "jobs"),  # held runs are released by a suspended Job
    ("get", "", "secrets"), ("get", "", "services"), ("list", "", "services"),
    ("get", "", "services/proxy"), ("create", "", "services/proxy"), ("list", "", "events"),
)
CHAOS_ACCESS: tuple[tuple[str, str, str], ...] = (("delete", "", "pods"), ("delete", "batch", "jobs"))


def missing_access(api: client.ApiClient, namespace: str, chaos: bool) -> list[str]:
    """What the current identity may not do in ``namespace`` (SelfSubjectAccessReview), e.g. "delete pods in ns"."""
    return denied_access(api, NAMESPACED_ACCESS + (CHAOS_ACCESS if chaos else ()), namespace, REQUEST_TIMEOUT)
