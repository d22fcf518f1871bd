"""What the suites need from a Dagster instance's dagster.yaml, read back with Dagster's defaults filled in, and
which launcher/executor combinations its run launcher serves."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = ["CELERY_LAUNCHER", "K8S_LAUNCHER", "InstanceConfig", "combinations_served", "parse_instance"]

K8S_LAUNCHER = "K8sRunLauncher"
CELERY_LAUNCHER = "CeleryK8sRunLauncher"

# Dagster's defaults for keys dagster.yaml leaves out, read in the installed Dagster 1.13.27:
# - dagster/_core/instance/ref.py (InstanceRef.config_defaults): run launcher dagster.DefaultRunLauncher, run
#   coordinator dagster._core.run_coordinator.QueuedRunCoordinator (also when only the legacy `run_queue` is set);
# - dagster/_core/run_coordinator/queued_run_coordinator.py: dequeue_interval_seconds 5;
# - dagster/_core/instance/methods/settings_methods.py: run_monitoring enabled False (_initialize_run_monitoring),
#   poll_interval_seconds 120, start_timeout_seconds 180, cancel_timeout_seconds 180,
#   max_resume_run_attempts 0 for every launcher; run_retries enabled False,
#   max_retries 0 (config.py gives the same schema defaults). Dagster before dagster-io/dagster#14323 (2023) used
#   max_resume_run_attempts 3 for launchers that can resume (K8sRunLauncher): an older deployment that leaves the
#   key out resumes runs although we report 0.
DEFAULT_LAUNCHER = ("dagster", "DefaultRunLauncher")
DEFAULT_COORDINATOR = "QueuedRunCoordinator"
DEFAULT_DEQUEUE_INTERVAL_SECONDS = 5
DEFAULT_POLL_INTERVAL_SECONDS = 120
DEFAULT_START_TIMEOUT_SECONDS = 180
DEFAULT_CANCEL_TIMEOUT_SECONDS = 180
DEFAULT_MAX_RUNTIME_SECONDS = 0  # settings_methods.py: run_monitoring_max_runtime_seconds
DEFAULT_MAX_RESUME_RUN_ATTEMPTS = 0
DEFAULT_MAX_RETRIES = 0


@dataclass(frozen=True)
class InstanceConfig:
    """What the suites need from dagster.yaml, with Dagster's defaults filled in."""

    run_launcher_module: str
    run_launcher_class: str
    run_k8s_config: dict[str, Any]
    run_monitoring: bool
    run_monitoring_poll_interval_seconds: int
    max_resume_run_attempts: int
    run_monitoring_start_timeout_seconds: int
    run_monitoring_cancel_timeout_seconds: int
    run_monitoring_max_runtime_seconds: int
    run_retries: bool
    max_retries: int
    run_coordinator_class: str
    dequeue_interval_seconds: int
    tag_concurrency_limits: tuple[tuple[str, str, int], ...] = ()  # (key, value, limit); others are left out
    raw: dict[str, Any] = field(default_factory=dict, repr=False)  # may hold literal credentials


def _int(value: Any, default: int) -> int:
    """A number from dagster.yaml; an `{env: VAR}` dict (or anything else) is unknown here, so Dagster's default."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return default


def _bool(value: Any, default: bool) -> bool:
    return value if isinstance(value, bool) else default


def _section(config: dict[str, Any], key: str) -> dict[str, Any]:
    value = config.get(key)
    return value if isinstance(value, dict) else {}


def _coordinator(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if config.get("run_queue"):  # legacy spelling of a QueuedRunCoordinator's config
        return DEFAULT_COORDINATOR, _section(config, "run_queue")
    coordinator = _section(config, "run_coordinator")
    return str(coordinator.get("class") or DEFAULT_COORDINATOR), _section(coordinator, "config")


def _tag_limits(entries: Any) -> tuple[tuple[str, str, int], ...]:
    """Limits on one tag value each; a limit per unique value ({applyLimitPerUniqueValue: true}) or on every
    value of a key is not one the suite sets, so it is left out."""
    limits = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("value"), str) and isinstance(entry.get("limit"), int):
            limits.append((str(entry.get("key")), entry["value"], entry["limit"]))
    return tuple(limits)


def parse_instance(text: str) -> InstanceConfig:
    """Read dagster.yaml; keys left out take Dagster's defaults (see the DEFAULT_* constants)."""
    loaded = yaml.safe_load(text) or {}
    config: dict[str, Any] = loaded if isinstance(loaded, dict) else {}
    launcher = _section(config, "run_launcher")
    launcher_config = _section(launcher, "config")
    monitoring, retries = _section(config, "run_monitoring"), _section(config, "run_retries")
    coordinator_class, coordinator_config = _coordinator(config)
    return InstanceConfig(
        run_launcher_module=str(launcher.get("module") or DEFAULT_LAUNCHER[0]),
        run_launcher_class=str(launcher.get("class") or DEFAULT_LAUNCHER[1]),
        run_k8s_config=dict(_section(launcher_config, "run_k8s_config")),  # env dicts inside kept as they are
        run_monitoring=_bool(monitoring.get("enabled"), False),
        run_monitoring_poll_interval_seconds=_int(monitoring.get("poll_interval_seconds"),
                                                  DEFAULT_POLL_INTERVAL_SECONDS),
        max_resume_run_attempts=_int(monitoring.get("max_resume_run_attempts"), DEFAULT_MAX_RESUME_RUN_ATTEMPTS),
        run_monitoring_start_timeout_seconds=_int(monitoring.get("start_timeout_seconds"),
                                                  DEFAULT_START_TIMEOUT_SECONDS),
        run_monitoring_cancel_timeout_seconds=_int(monitoring.get("cancel_timeout_seconds"),
                                                   DEFAULT_CANCEL_TIMEOUT_SECONDS),
        run_monitoring_max_runtime_seconds=_int(monitoring.get("max_runtime_seconds"), DEFAULT_MAX_RUNTIME_SECONDS),
        run_retries=_bool(retries.get("enabled"), False),
        max_retries=_int(retries.get("max_retries"), DEFAULT_MAX_RETRIES),
        run_coordinator_class=coordinator_class,
        dequeue_interval_seconds=_int(coordinator_config.get("dequeue_interval_seconds"),
                                      DEFAULT_DEQUEUE_INTERVAL_SECONDS),
        tag_concurrency_limits=_tag_limits(coordinator_config.get("tag_concurrency_limits")),
        raw=config,
    )


def combinations_served(instance: InstanceConfig) -> tuple[str, ...]:
    """The combinations a deployment can be tested as: with the K8sRunLauncher each job picks its executor."""
    if instance.run_launcher_class == K8S_LAUNCHER:
        return ("k8s-multiprocess", "k8s-job")
    if instance.run_launcher_class == CELERY_LAUNCHER:
        return ("celery-k8s",)
    return ()
