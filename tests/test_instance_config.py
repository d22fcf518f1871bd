"""Self-tests for deploy.instance_config: dagster.yaml read back with Dagster's defaults, and the combinations a
run launcher serves."""

from __future__ import annotations

import yaml

from deploy.instance_config import combinations_served, parse_instance
from deploy.manifests import instance_config
from tests.chart_fakes import CELERY_INSTANCE, K8S_INSTANCE
from tests.test_helm import settings


def test_combinations_served_follow_the_run_launcher() -> None:
    instance = parse_instance(K8S_INSTANCE)
    assert combinations_served(instance) == ("k8s-multiprocess", "k8s-job")
    assert combinations_served(parse_instance(CELERY_INSTANCE)) == ("celery-k8s",)
    assert combinations_served(parse_instance("")) == ()


def test_instance_defaults_are_dagsters() -> None:
    instance = parse_instance("run_monitoring: {enabled: true}\nrun_queue: {max_concurrent_runs: 3}\n")
    assert (instance.run_monitoring_poll_interval_seconds, instance.max_resume_run_attempts) == (120, 0)
    assert (instance.run_monitoring_start_timeout_seconds, instance.run_monitoring_cancel_timeout_seconds) == (180, 180)
    assert (instance.run_retries, instance.max_retries) == (False, 0)
    assert (instance.run_coordinator_class, instance.dequeue_interval_seconds) == ("QueuedRunCoordinator", 5)
    assert instance.run_k8s_config == {}


def test_env_references_for_numbers_are_unknown() -> None:
    instance = parse_instance("run_retries: {enabled: true, max_retries: {env: RETRIES}}\n"
                                "run_coordinator: {class: QueuedRunCoordinator, config: "
                                "{dequeue_interval_seconds: {env: DEQUEUE}}}\n")
    assert (instance.max_retries, instance.dequeue_interval_seconds) == (0, 5)


def test_start_and_cancel_timeouts_are_read_back() -> None:
    instance = parse_instance("run_monitoring: {enabled: true, start_timeout_seconds: 300, "
                              "cancel_timeout_seconds: 60}\n")
    assert (instance.run_monitoring_start_timeout_seconds, instance.run_monitoring_cancel_timeout_seconds) == (300, 60)
    assert instance.run_monitoring_max_runtime_seconds == 0, "Dagster's default: no instance-wide max runtime"


def test_tag_concurrency_limits_our_dagster_yaml_sets_are_read_back() -> None:
    cfg = settings(tag_concurrency_limits=(("dkc/c24-queue", "one-at-a-time", 1),))
    instance = parse_instance(yaml.safe_dump(instance_config(cfg)))
    assert instance.tag_concurrency_limits == (("dkc/c24-queue", "one-at-a-time", 1),)
    assert parse_instance(yaml.safe_dump(instance_config(settings()))).tag_concurrency_limits == ()


def test_tag_limits_the_suite_does_not_set_are_left_out() -> None:
    instance = parse_instance("run_coordinator: {class: QueuedRunCoordinator, config: {tag_concurrency_limits: ["
                              "{key: team, limit: 2}, {key: a, value: {applyLimitPerUniqueValue: true}, limit: 1}, "
                              "{key: b, value: x, limit: 3}]}}\n")
    assert instance.tag_concurrency_limits == (("b", "x", 3),)
