"""The official Dagster Helm chart's names and labels (release ``dagster``), and the selectors made of them: the
one place they are spelled.

The suite's own manifests follow the chart (deploy/manifests.py), so a selector a user would write against a
chart-installed Dagster finds the suite's deployment too. Discovery's defaults (``*_SELECTOR``) leave the release
out: someone else may have named theirs differently. Dagster's own labels, on the pods it launches, are
observation/labels.py's (a room below, which observation reads too) and are re-exported here.
"""

from __future__ import annotations

from observation.kube import label_selector
from observation.labels import (
    DAGSTER_COMPONENT_LABEL,
    EXTERNAL_JOB_COMPONENT,
    JOB_NAME_LABEL,
    OP_LABEL,
    RUN_ID_LABEL,
    STEP_JOB_PREFIX,
    dagster_pod,
    run_job_name,
    run_job_pods,
    run_selector,
)

__all__ = [
    "BROKER", "CELERY_COMPONENT", "CELERY_CONFIG_MAP", "CELERY_SELECTOR", "CELERY_WORKERS", "CHART",
    "CODE_LOCATIONS_SELECTOR", "COMPONENT_LABEL", "DAEMON", "DAEMON_COMPONENT", "DAEMON_SELECTOR",
    "DAGSTER_COMPONENT_LABEL", "EXTERNAL_JOB_COMPONENT", "INSTANCE_CONFIG_MAP", "INSTANCE_LABEL", "JOB_NAME_LABEL",
    "LOCATION_LABEL", "NAME_LABEL", "OP_LABEL", "PIPELINE_ENV_CONFIG_MAP", "POSTGRES", "POSTGRESQL_COMPONENT",
    "POSTGRESQL_SELECTOR", "POSTGRES_PASSWORD_KEY", "POSTGRES_SECRET", "REDIS_COMPONENT", "RELEASE", "RUN_ID_LABEL",
    "SERVICE_ACCOUNT", "STEP_JOB_PREFIX", "USER_DEPLOYMENTS_COMPONENT", "USER_DEPLOYMENTS_SERVICE_ACCOUNT", "WEBSERVER",
    "WEBSERVER_COMPONENT", "WEBSERVER_SELECTOR", "WORKSPACE_CONFIG_MAP", "any_release", "chart_labels",
    "component_of", "location_selector", "run_job_name", "run_job_pods", "run_selector", "selector",
    "user_deployment",
]

RELEASE = "dagster"
CHART = "dagster"  # the value of app.kubernetes.io/name

# Label keys.
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"  # the release
COMPONENT_LABEL = "component"
LOCATION_LABEL = "deployment"  # on a code location's objects; its value is the location's name

# Values of the component label.
WEBSERVER_COMPONENT = "dagster-webserver"
DAEMON_COMPONENT = "dagster-daemon"
USER_DEPLOYMENTS_COMPONENT = "user-deployments"  # code location servers
CELERY_COMPONENT = "celery"  # on the workers' Deployment; the chart leaves it off their pods
POSTGRESQL_COMPONENT = "postgresql"
REDIS_COMPONENT = "redis"

# Object names, as the chart names them for release "dagster".
WEBSERVER = f"{RELEASE}-dagster-webserver"  # the Deployment and its Service
DAEMON = f"{RELEASE}-daemon"
INSTANCE_CONFIG_MAP = f"{RELEASE}-instance"  # holds dagster.yaml
WORKSPACE_CONFIG_MAP = f"{RELEASE}-workspace-yaml"
PIPELINE_ENV_CONFIG_MAP = f"{RELEASE}-pipeline-env"
POSTGRES = f"{RELEASE}-postgresql"
POSTGRES_SECRET = f"{RELEASE}-postgresql-secret"
POSTGRES_PASSWORD_KEY = "postgresql-password"
BROKER = f"{RELEASE}-redis"
CELERY_WORKERS = f"{RELEASE}-celery-workers"
CELERY_CONFIG_MAP = f"{RELEASE}-celery-config"
SERVICE_ACCOUNT = RELEASE  # webserver, daemon, Celery workers
# Code location servers and, through their container context, run and step pods: the chart's second account,
# with its narrower Role (Jobs and pods only).
USER_DEPLOYMENTS_SERVICE_ACCOUNT = f"{RELEASE}-dagster-user-deployments-user-deployments"


def user_deployment(location: str) -> str:
    """The Deployment (and Service) of a code location server the chart makes from dagster-user-deployments."""
    return f"{RELEASE}-dagster-user-deployments-{location}"


def chart_labels(component: str, **extra: str) -> dict[str, str]:
    """The labels the chart puts on a component's objects (and selects its pods by), e.g. ``deployment=alpha``."""
    return {NAME_LABEL: CHART, INSTANCE_LABEL: RELEASE, COMPONENT_LABEL: component, **extra}


def selector(component: str, **extra: str) -> str:
    """The objects of one component of the release, e.g. ``selector("user-deployments", deployment="alpha")``."""
    return label_selector({INSTANCE_LABEL: RELEASE, COMPONENT_LABEL: component, **extra})


def location_selector(location: str) -> str:
    """The server of one code location of the release."""
    return selector(USER_DEPLOYMENTS_COMPONENT, **{LOCATION_LABEL: location})


def any_release(component: str) -> str:
    """The objects of one component, whatever the release is called."""
    return label_selector({COMPONENT_LABEL: component})


# How discovery finds the parts of someone else's Dagster unless told otherwise (--webserver-selector & co.).
WEBSERVER_SELECTOR = any_release(WEBSERVER_COMPONENT)
DAEMON_SELECTOR = any_release(DAEMON_COMPONENT)
CODE_LOCATIONS_SELECTOR = any_release(USER_DEPLOYMENTS_COMPONENT)
CELERY_SELECTOR = any_release(CELERY_COMPONENT)
POSTGRESQL_SELECTOR = any_release(POSTGRESQL_COMPONENT)

# What a chart-labelled pod is, in words a reader of the report knows.
_COMPONENT_WORDS = {
    WEBSERVER_COMPONENT: "webserver",
    DAEMON_COMPONENT: "daemon",
    CELERY_COMPONENT: "celery worker",
    POSTGRESQL_COMPONENT: "postgresql",
    REDIS_COMPONENT: "broker",
}


def component_of(labels: dict[str, str] | None) -> str:
    """What a pod is, in words a reader of the report knows ("webserver", "code location x", "run 1a2b3c4d"):
    the pod timeline's ``describe`` (observation/timeline.py)."""
    labels = labels or {}
    launched = dagster_pod(labels)
    if launched is not None:
        return launched
    component = labels.get(COMPONENT_LABEL, "")
    if component == USER_DEPLOYMENTS_COMPONENT:
        return f"code location {labels.get(LOCATION_LABEL, '?')}"
    return _COMPONENT_WORDS.get(component, "other")
