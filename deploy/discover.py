"""Find a Dagster someone else deployed (e.g. with the official Helm chart) and describe it like our own.

The parts are found by the chart's labels (deploy/names.py), the instance is read back from its ``dagster.yaml``
(deploy/instance_config.py), and the result is the same ``DeploymentSettings`` the suites get for a deployment we
made, with ``owned=False``: the suite never reconfigures or deletes it. What the suite's identity must be allowed
there is deploy/access.py's.
"""

from __future__ import annotations

import base64
import shlex
from dataclasses import dataclass, field

import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from common.errors import DkcError
from deploy import names
from deploy import settings as s
from deploy.images import LOCATION_NAMES
from deploy.instance_config import (
    CELERY_LAUNCHER,
    K8S_LAUNCHER,
    InstanceConfig,
    combinations_served,
    parse_instance,
)
from deploy.settings import CodeLocation, DeploymentSettings, Images, ObjectNames

REQUEST_TIMEOUT = 15
INSTANCE_KEY = "dagster.yaml"


class DiscoveryError(DkcError):
    """A part of the deployment was not found: one line saying what, and the option that fixes it."""


@dataclass(frozen=True)
class Selectors:
    """How the parts are labelled; the defaults are the official chart's."""

    webserver: str = names.WEBSERVER_SELECTOR
    daemon: str = names.DAEMON_SELECTOR
    code_locations: str = names.CODE_LOCATIONS_SELECTOR
    celery_workers: str = names.CELERY_SELECTOR
    instance_config_map: str | None = None  # None: the ConfigMap with a dagster.yaml key
    location_label: str = names.LOCATION_LABEL  # its value on a code location's Deployment is the location's name


@dataclass(frozen=True)
class DiscoveredDagster:
    """Everything found in the namespace."""

    namespace: str
    instance: InstanceConfig
    names: ObjectNames
    dagster_image: str
    webserver_replicas: int
    code_locations: tuple[CodeLocation, ...]  # the suite's sample locations, in the order asked for
    other_locations: tuple[CodeLocation, ...] = ()
    celery_worker_replicas: int | None = None
    celery_worker_concurrency: int | None = None  # None: not on the worker's command line
    postgres_password: str | None = field(default=None, repr=False)  # None: not readable
    test_secret_value: str | None = field(default=None, repr=False)


# --- containers -----------------------------------------------------------------------------------------------

def _words(container: client.V1Container) -> list[str]:
    """command + args as words; a shell script (`bash -c "..."`, as the chart runs the webserver) is split too."""
    words: list[str] = []
    for part in [*(container.command or []), *(container.args or [])]:
        try:
            words += shlex.split(part) if " " in part else [part]
        except ValueError:
            words += part.split()
    return words


def _option(words: list[str], *flags: str) -> str | None:
    """The value of the first of ``flags`` present: `--flag value`, `--flag=value` or `-f value`."""
    for i, word in enumerate(words):
        for flag in flags:
            if word == flag and i + 1 < len(words):
                return words[i + 1]
            if flag.startswith("--") and word.startswith(flag + "="):
                return word[len(flag) + 1:]
    return None


def _container(deployment: client.V1Deployment, *hints: str) -> client.V1Container:
    """The container running Dagster: the first whose command line mentions a hint, else the first one."""
    containers = deployment.spec.template.spec.containers
    for container in containers:
        if any(hint in _words(container) for hint in hints):
            return container
    return containers[0]


def concurrency(container: client.V1Container) -> int | None:
    """A Celery worker's concurrency from its command line, None when it does not say (Celery then uses its CPUs)."""
    words = _words(container)
    for i, word in enumerate(words):
        value = None
        if word.startswith("--concurrency="):
            value = word.split("=", 1)[1]
        elif word in ("--concurrency", "-c") and i + 1 < len(words):
            value = words[i + 1]
        if value is not None and value.isdigit():
            return int(value)
    return None


def _plain_env(container: client.V1Container) -> tuple[tuple[str, str], ...]:
    """Literal env vars; DAGSTER_* are the chart's bookkeeping (image, container context, home), not the user's."""
    return tuple((var.name, var.value) for var in container.env or []
                 if var.value is not None and var.value_from is None and not var.name.startswith("DAGSTER_"))


def _env_from(container: client.V1Container) -> tuple[tuple[str, ...], tuple[str, ...]]:
    sources = container.env_from or []
    return (tuple(src.config_map_ref.name for src in sources if src.config_map_ref),
            tuple(src.secret_ref.name for src in sources if src.secret_ref))


def code_location(deployment: client.V1Deployment, location_label: str = names.LOCATION_LABEL) -> CodeLocation:
    """A code location server as the suites describe one; its name is the Deployment's location label."""
    container = _container(deployment, "grpc", "code-server")
    config_maps, secrets = _env_from(container)
    name = (deployment.metadata.labels or {}).get(location_label) or deployment.metadata.name
    return CodeLocation(name=name, image=container.image,
                        python_file=_option(_words(container), "-f", "--python-file") or "",
                        env=_plain_env(container), env_config_maps=config_maps, env_secrets=secrets,
                        deployment_name=deployment.metadata.name)


# --- the cluster ------------------------------------------------------------------------------------------------

def _deployments(apps: client.AppsV1Api, namespace: str, selector: str) -> list[client.V1Deployment]:
    found = apps.list_namespaced_deployment(namespace, label_selector=selector, _request_timeout=REQUEST_TIMEOUT)
    return sorted(found.items, key=lambda d: d.metadata.name)


def _one_deployment(apps: client.AppsV1Api, namespace: str, selector: str, what: str,
                    option: str) -> client.V1Deployment:
    found = _deployments(apps, namespace, selector)
    if not found:
        raise DiscoveryError(f"namespace {namespace} has no {what}: no Deployment matches {selector} "
                             f"(pass {option} if yours is labelled differently)")
    if len(found) > 1:
        several = ", ".join(d.metadata.name for d in found)
        raise DiscoveryError(f"namespace {namespace} has several {what}s ({several}) matching {selector}: "
                             f"pass a narrower {option}")
    return found[0]


def _check_namespace(core: client.CoreV1Api, namespace: str) -> None:
    try:
        core.read_namespace(namespace, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status == 404:
            raise DiscoveryError(f"namespace {namespace} does not exist (check the namespace and the kube "
                                 "context)") from exc
        if exc.status != 403:  # a namespaced identity may not read Namespaces: the lookups below tell
            raise


def _webserver_service(core: client.CoreV1Api, namespace: str, webserver: client.V1Deployment) -> tuple[str, int]:
    """The Service whose selector picks the webserver's pods, and its HTTP port."""
    pod_labels = webserver.spec.template.metadata.labels or {}
    services = core.list_namespaced_service(namespace, _request_timeout=REQUEST_TIMEOUT).items
    matching = sorted((svc for svc in services if svc.spec.selector
                       and all(pod_labels.get(k) == v for k, v in svc.spec.selector.items())),
                      key=lambda svc: (svc.metadata.name != webserver.metadata.name, svc.metadata.name))
    if not matching:
        raise DiscoveryError(f"namespace {namespace} has no Service selecting the pods of the webserver Deployment "
                             f"{webserver.metadata.name}: the suite reaches GraphQL through one")
    service = matching[0]
    ports = service.spec.ports or []
    port = next((p for p in ports if p.name == "http"), ports[0] if ports else None)
    if port is None:
        raise DiscoveryError(f"Service {namespace}/{service.metadata.name} of the webserver exposes no port")
    return service.metadata.name, port.port


def _mounted_config_maps(deployment: client.V1Deployment) -> set[str]:
    return {vol.config_map.name for vol in deployment.spec.template.spec.volumes or [] if vol.config_map}


def _instance_config_map(core: client.CoreV1Api, namespace: str, selectors: Selectors,
                         webserver: client.V1Deployment) -> client.V1ConfigMap:
    """The named ConfigMap, else the one with dagster.yaml the webserver mounts, else the one named *-instance."""
    if selectors.instance_config_map:
        try:
            found = core.read_namespaced_config_map(selectors.instance_config_map, namespace,
                                                    _request_timeout=REQUEST_TIMEOUT)
        except ApiException as exc:
            if exc.status != 404:
                raise
            raise DiscoveryError(f"ConfigMap {selectors.instance_config_map} does not exist in {namespace} "
                                 "(check --instance-config-map)") from exc
        if INSTANCE_KEY not in (found.data or {}):
            raise DiscoveryError(f"ConfigMap {namespace}/{selectors.instance_config_map} has no {INSTANCE_KEY} key "
                                 "(pass the instance ConfigMap with --instance-config-map)")
        return found
    candidates = sorted((cm for cm in core.list_namespaced_config_map(namespace, _request_timeout=REQUEST_TIMEOUT).items
                         if INSTANCE_KEY in (cm.data or {})), key=lambda cm: cm.metadata.name)
    mounted = [cm for cm in candidates if cm.metadata.name in _mounted_config_maps(webserver)]
    suffixed = [cm for cm in candidates if cm.metadata.name.endswith("-instance")]
    for choice in (mounted, suffixed, candidates):
        if len(choice) == 1:
            return choice[0]
    if not candidates:
        raise DiscoveryError(f"no instance ConfigMap with a {INSTANCE_KEY} key in {namespace} "
                             "(pass --instance-config-map)")
    several = ", ".join(cm.metadata.name for cm in candidates)
    raise DiscoveryError(f"several ConfigMaps with a {INSTANCE_KEY} key in {namespace} ({several}): "
                         "pass --instance-config-map")


def _secret_value(core: client.CoreV1Api, namespace: str, name: str, key: str) -> str | None:
    """A Secret's value, or None when the Secret, the key or the permission to read it is missing."""
    try:
        secret = core.read_namespaced_secret(name, namespace, _request_timeout=REQUEST_TIMEOUT)
    except ApiException as exc:
        if exc.status in (401, 403, 404):
            return None
        raise
    encoded = (secret.data or {}).get(key)
    return base64.b64decode(encoded).decode(errors="replace") if encoded is not None else None


def _postgres_password(core: client.CoreV1Api, namespace: str, container: client.V1Container) -> str | None:
    """The value behind the webserver's DAGSTER_PG_PASSWORD (a Secret reference, or a literal)."""
    var = next((v for v in container.env or [] if v.name == "DAGSTER_PG_PASSWORD"), None)
    if var is None:
        return None
    if var.value is not None:
        return var.value
    ref = var.value_from.secret_key_ref if var.value_from else None
    return _secret_value(core, namespace, ref.name, ref.key) if ref else None


def _celery_workers(apps: client.AppsV1Api, namespace: str, selector: str) -> client.V1Deployment:
    """The workers of Dagster's default queue (the chart makes one Deployment per queue), else the first."""
    found = _deployments(apps, namespace, selector)
    if not found:
        raise DiscoveryError(f"namespace {namespace} runs the {CELERY_LAUNCHER} but has no Celery workers: no "
                             f"Deployment matches {selector} (pass --celery-selector if yours are labelled "
                             "differently)")
    for deployment in found:
        words = _words(_container(deployment, "dagster-celery", "celery"))
        if _option(words, "-q", "--queue") == s.CELERY_QUEUE:
            return deployment
    return found[0]


def _locations(apps: client.AppsV1Api, namespace: str, selectors: Selectors,
               required: tuple[str, ...]) -> tuple[tuple[CodeLocation, ...], tuple[CodeLocation, ...]]:
    """(the required locations in order, the others); a missing required location is an error."""
    found = {loc.name: loc for loc in (code_location(d, selectors.location_label)
                                       for d in _deployments(apps, namespace, selectors.code_locations))}
    missing = [name for name in required if name not in found]
    if missing:
        which, it = ((f"location {missing[0]} is", "it") if len(missing) == 1
                     else (f"locations {', '.join(missing)} are", "them"))
        raise DiscoveryError(f"the suite's sample code {which} not deployed in {namespace} (looked for Deployments "
                             f"matching {selectors.code_locations}): add {it} with the Helm values printed by "
                             "`./dkc sample-location`")
    if not required:
        return tuple(found.values()), ()
    return tuple(found[name] for name in required), tuple(loc for name, loc in found.items() if name not in required)


def discover(api: client.ApiClient, namespace: str, selectors: Selectors = Selectors(),
             required_locations: tuple[str, ...] = LOCATION_NAMES) -> DiscoveredDagster:
    """Find the webserver, daemon, instance, code locations (and Celery workers) of the Dagster in ``namespace``."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    _check_namespace(core, namespace)
    webserver = _one_deployment(apps, namespace, selectors.webserver, "Dagster webserver", "--webserver-selector")
    webserver_container = _container(webserver, "dagster-webserver", "dagit")
    service, port = _webserver_service(core, namespace, webserver)
    daemon = _one_deployment(apps, namespace, selectors.daemon, "Dagster daemon", "--daemon-selector")
    config_map = _instance_config_map(core, namespace, selectors, webserver)
    try:
        instance = parse_instance(config_map.data[INSTANCE_KEY])
    except yaml.YAMLError as exc:
        raise DiscoveryError(f"the {INSTANCE_KEY} in ConfigMap {namespace}/{config_map.metadata.name} is not valid "
                             f"YAML ({str(exc).splitlines()[0]})") from exc
    locations, others = _locations(apps, namespace, selectors, required_locations)
    workers = (_celery_workers(apps, namespace, selectors.celery_workers)
               if instance.run_launcher_class == CELERY_LAUNCHER else None)
    parts = ObjectNames(webserver=webserver.metadata.name, webserver_service=service, webserver_port=port,
                        daemon=daemon.metadata.name, instance_config_map=config_map.metadata.name,
                        celery_workers=workers.metadata.name if workers else None)
    return DiscoveredDagster(
        namespace=namespace, instance=instance, names=parts, dagster_image=webserver_container.image,
        webserver_replicas=_replicas(webserver), code_locations=locations, other_locations=others,
        celery_worker_replicas=_replicas(workers) if workers else None,
        celery_worker_concurrency=concurrency(_container(workers, "dagster-celery", "celery")) if workers else None,
        postgres_password=_postgres_password(core, namespace, webserver_container),
        test_secret_value=_secret_value(core, namespace, s.TEST_ENV_SECRET, s.SECRET_ENV_NAME),
    )


def _replicas(deployment: client.V1Deployment) -> int:
    replicas = deployment.spec.replicas
    return 1 if replicas is None else replicas  # Kubernetes' default


# --- from what was found to what the suites use -----------------------------------------------------------------

def settings_for(discovered: DiscoveredDagster, combination: str) -> DeploymentSettings:
    """The description the suites use, for one combination this deployment serves."""
    s.validate_combination(combination)
    instance = discovered.instance
    served = combinations_served(instance)
    if combination not in served:
        choose = (f"it serves {', '.join(served)}" if served
                  else f"the suite tests the {K8S_LAUNCHER} and the {CELERY_LAUNCHER}")
        raise DiscoveryError(f"the Dagster in {discovered.namespace} runs the {instance.run_launcher_class} "
                             f"({instance.run_launcher_module}), which cannot run {combination}: {choose}")
    celery: dict[str, int] = {}  # unknown: keep the DeploymentSettings defaults
    if discovered.celery_worker_replicas is not None:
        celery["celery_worker_replicas"] = discovered.celery_worker_replicas
    if discovered.celery_worker_concurrency is not None:
        celery["celery_worker_concurrency"] = discovered.celery_worker_concurrency
    return DeploymentSettings(
        combination=combination, namespace=discovered.namespace,
        images=Images(dagster=discovered.dagster_image, postgres=""), code_locations=discovered.code_locations,
        webserver_replicas=discovered.webserver_replicas,
        dequeue_interval_seconds=instance.dequeue_interval_seconds, run_monitoring=instance.run_monitoring,
        tag_concurrency_limits=instance.tag_concurrency_limits,
        run_monitoring_poll_interval_seconds=instance.run_monitoring_poll_interval_seconds,
        run_monitoring_start_timeout_seconds=instance.run_monitoring_start_timeout_seconds,
        run_monitoring_cancel_timeout_seconds=instance.run_monitoring_cancel_timeout_seconds,
        run_monitoring_max_runtime_seconds=instance.run_monitoring_max_runtime_seconds,
        max_resume_run_attempts=instance.max_resume_run_attempts, run_retries=instance.run_retries,
        max_retries=instance.max_retries, run_k8s_config=dict(instance.run_k8s_config),
        postgres_password=discovered.postgres_password or "", test_secret_value=discovered.test_secret_value or "",
        names=discovered.names, owned=False, **celery,
    )


