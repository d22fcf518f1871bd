"""Self-tests for observation.failures and the hold workload's test side: one-line causes, no cluster."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterRunStatus
from kubernetes import client

from dagster_api import RunEvent
from dagster_api.parse import python_error_text
from observation import failures
from observation.failures import container_problems, first_error, pod_problems, run_failure_cause
from suites import hold
from workloads.locations.conformance.definitions import HOLDING_MESSAGE


def event(event_type: str | None, message: str = "", error: str | None = None, level: str | None = "INFO",
          step_key: str | None = None, timestamp: float = 1.0) -> RunEvent:
    return RunEvent(kind="X", event_type=event_type, step_key=step_key, message=message, timestamp=timestamp,
                    level=level, metadata={}, error=error)


def test_first_error_is_the_first_event_with_an_error_before_error_level_messages() -> None:
    events = [event("RUN_START"), event(None, "Run worker failed", level="ERROR"),
              event("STEP_FAILURE", "hold failed", error="ApiException: (403) Forbidden: cannot watch jobs",
                    step_key="hold"), event("RUN_FAILURE", "Execution failed", level="ERROR")]
    assert first_error(events) == "STEP_FAILURE hold: ApiException: (403) Forbidden: cannot watch jobs"


def test_first_error_falls_back_to_the_first_error_level_entry_and_then_to_none() -> None:
    assert first_error([event("RUN_START"), event("ENGINE_EVENT", "pod OOMKilled", level="ERROR")]) == (
        "ENGINE_EVENT: pod OOMKilled")
    assert first_error([event("RUN_START"), event("RUN_SUCCESS")]) is None


def pod(phase: str, *, waiting: str | None = None, terminated: tuple[str, int] | None = None,
        unschedulable: str | None = None) -> client.V1Pod:
    state = client.V1ContainerState(
        waiting=client.V1ContainerStateWaiting(reason=waiting, message="Back-off pulling image") if waiting else None,
        terminated=client.V1ContainerStateTerminated(reason=terminated[0], exit_code=terminated[1])
        if terminated else None)
    conditions = [client.V1PodCondition(type="PodScheduled", status="False", reason="Unschedulable",
                                        message=unschedulable)] if unschedulable else []
    return client.V1Pod(metadata=client.V1ObjectMeta(name="dagster-run-abc-x"), status=client.V1PodStatus(
        phase=phase, conditions=conditions,
        container_statuses=[client.V1ContainerStatus(name="dagster", state=state, image="i", image_id="",
                                                     ready=False, restart_count=0)]))


def test_pod_problems_name_waiting_and_terminated_reasons_and_unschedulable() -> None:
    assert container_problems(pod("Pending", waiting="ImagePullBackOff")) == [
        "dagster: ImagePullBackOff (Back-off pulling image)"]
    assert container_problems(pod("Failed", terminated=("OOMKilled", 137))) == ["dagster: OOMKilled (exit 137)"]
    assert pod_problems(pod("Pending", unschedulable="0/1 nodes are available")) == [
        "Unschedulable: 0/1 nodes are available"]


def test_a_healthy_or_starting_pod_has_no_problem() -> None:
    assert pod_problems(pod("Pending", waiting="ContainerCreating")) == []
    assert pod_problems(pod("Succeeded", terminated=("Completed", 0))) == []


def test_the_cause_line_says_which_source_could_not_be_read() -> None:
    def broken() -> list[RunEvent]:
        raise ConnectionError("webserver down")

    line = run_failure_cause(broken, lambda: "pod x Failed: dagster: OOMKilled (exit 137)")
    assert line.startswith("event log not readable (ConnectionError: webserver down)")
    assert line.endswith("pod x Failed: dagster: OOMKilled (exit 137)")
    assert run_failure_cause(lambda: [], lambda: None) == (
        "no error in Dagster's event log ; its Jobs and pods show no problem")


def test_a_release_job_never_makes_a_pod_and_carries_the_session() -> None:
    job = hold.release_job("dkc-release-r1", "docker.io/local/alpha:1")
    assert job.spec.suspend is True
    assert job.metadata.labels == {hold.SESSION_LABEL: hold.SESSION}


class FakeWebserver:
    def __init__(self, events: list[RunEvent], status: str) -> None:
        self.events, self.status = events, DagsterRunStatus(status)

    def run_events(self, run_id: str) -> list[RunEvent]:
        return self.events

    def run_status(self, run_id: str) -> DagsterRunStatus:
        return self.status

    def cause_of(self, run_id: str) -> str:
        return ": cause"


def test_a_run_holds_once_its_op_says_so() -> None:
    said = HOLDING_MESSAGE.format(namespace="ns", name="dkc-release-r1")
    web: Any = FakeWebserver([event("RUN_START"), event(None, said, timestamp=7.0)], "STARTED")
    assert hold.wait_until_holding(web, "r1", timeout=1) == 7.0


def test_a_hold_that_fails_before_it_holds_raises_the_ops_own_error() -> None:
    forbidden = "ApiException: (403) jobs.batch is forbidden: cannot list resource jobs"
    web: Any = FakeWebserver([event("STEP_FAILURE", error=forbidden, step_key="hold")], "FAILURE")
    with pytest.raises(hold.HoldFailed, match=r"ended FAILURE before it held: STEP_FAILURE hold: .*403"):
        hold.wait_until_holding(web, "r1", timeout=5)


def test_a_run_the_fault_under_test_ended_before_it_held_counts_only_when_named() -> None:
    cancel = event("RUN_CANCELING", "Canceling due to exceeding maximum runtime of 20 seconds.", timestamp=9.0)
    unknown = event("RUN_CANCELED", error="DagsterUnknownStepStateError: steps {'hold'} in an unknown state")
    web: Any = FakeWebserver([event("RUN_START"), cancel, unknown], "FAILURE")
    assert hold.wait_until_holding(web, "r1", timeout=1, or_ended_by="exceeding maximum runtime") == 9.0
    with pytest.raises(hold.HoldFailed, match="ended FAILURE before it held: RUN_CANCELED: DagsterUnknownStep"):
        hold.wait_until_holding(web, "r1", timeout=1, or_ended_by="some other fault")
    web.status = DagsterRunStatus("STARTED")  # named, but the run has not ended: still waiting for the hold
    with pytest.raises(hold.HoldFailed, match="not holding yet"):
        hold.wait_until_holding(web, "r1", timeout=0.5, or_ended_by="exceeding maximum runtime")


def test_an_api_exception_keeps_its_status_message_and_drops_the_headers() -> None:
    raw = ("DagsterK8sUnrecoverableAPIError: Unexpected error caused by ForbiddenException: (403) Reason: Forbidden "
           "HTTP response headers: HTTPHeaderDict({'Audit-Id': 'a', 'Content-Type': 'application/json'}) "
           'HTTP response body: {"kind":"Status","status":"Failure","message":"jobs.batch is forbidden: User '
           '\\"system:serviceaccount:ns:sa\\" cannot create resource \\"jobs\\"","reason":"Forbidden","code":403}')
    assert python_error_text({"message": raw, "causes": []}) == (
        "DagsterK8sUnrecoverableAPIError: Unexpected error caused by ForbiddenException: (403) "
        'Reason: Forbidden jobs.batch is forbidden: User "system:serviceaccount:ns:sa" cannot create resource "jobs"')


def test_a_run_worker_cancel_after_the_daemons_max_runtime_failure_is_named_and_nothing_else_is() -> None:
    from suites.test_max_runtime import canceled_after_the_daemons_failure

    canceling = event("RUN_CANCELING", "Canceling due to exceeding maximum runtime of 20 seconds.", timestamp=10.0)
    failure = event("RUN_FAILURE", "Exceeded maximum runtime of 20 seconds.", timestamp=11.0)
    canceled = event("RUN_CANCELED", "Execution of run for \"hold\" canceled.", timestamp=13.0)
    said = canceled_after_the_daemons_failure([canceling, failure, canceled])
    assert "stored after it, +2.0s" in said and "Exceeded maximum runtime" in said
    # Seen on 1.12.22: the worker's RUN_CANCELED stored first, the daemon's RUN_FAILURE (earlier timestamp) second,
    # and still CANCELED is the run's status: the status updates, not the events, decide.
    early_failure = event("RUN_FAILURE", "Exceeded maximum runtime of 20 seconds.", timestamp=12.5)
    assert "stored before it, +0.5s" in canceled_after_the_daemons_failure([canceling, canceled, early_failure])
    assert canceled_after_the_daemons_failure([canceling, canceled]) == ""  # no failure of the daemon's
    assert canceled_after_the_daemons_failure([event("RUN_FAILURE", "Steps failed: ['hold']."), canceled]) == ""


def test_a_run_without_an_error_is_described_by_its_last_event() -> None:
    submitted = RunEvent(kind="EngineEvent", event_type="ENGINE_EVENT", step_key="hold", level="DEBUG",
                         message='Submitting celery task for step "hold" to queue "dagster".', timestamp=1000.0,
                         metadata={}, error=None)
    started = RunEvent(kind="RunStartEvent", event_type="RUN_START", step_key=None, level="DEBUG",
                       message="Started execution of run.", timestamp=990.0, metadata={}, error=None)
    assert failures._last_event([submitted, started], now=1247.0) == (
        ' (its last event, 247 s ago: ENGINE_EVENT [hold] Submitting celery task for step "hold" to queue "dagster".)')
    assert failures._last_event([]) == ""
