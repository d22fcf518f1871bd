"""Self-tests for dagster_api's parsing: GraphQL JSON to typed results, and the raw queries against the schema."""

from __future__ import annotations

from typing import Any

import pytest
from dagster import DagsterRunStatus

import dagster_api as g
from dagster_api.parse import parse_daemon_status, parse_event, parse_location_entry, parse_run
from dagster_api.queries import RAW_QUERIES
from tests.dagster_answers import FAILURE_EVENT, LOG_EVENT, OUTPUT_EVENT, RUN_NODE


def test_a_run_with_tags_and_lineage_is_parsed() -> None:
    run = parse_run(RUN_NODE)
    assert run.status is DagsterRunStatus.FAILURE and run.finished
    assert run.tags["suite"] == "c07" and run.tags["dagster/parent_run_id"] == "a1"
    assert (run.parent_run_id, run.root_run_id) == ("a1", "a0"), "a retry names its parent and root"
    assert run.start_time == pytest.approx(1795530185.4) and run.end_time is None


def test_event_metadata_becomes_label_to_value() -> None:
    event = parse_event(OUTPUT_EVENT)
    assert (event.kind, event.event_type, event.step_key) == ("ExecutionStepOutputEvent", "STEP_OUTPUT", "good")
    assert event.timestamp == pytest.approx(1795530243.192), "milliseconds in a string become seconds"
    assert event.metadata == {"rows": 3, "note": "fine", "ratio": 0.5, "flag": True, "js": {"a": 1},
                              "asset": "raw/orders", "table": None}
    assert event.error is None


def test_a_plain_log_message_has_no_event_type() -> None:
    event = parse_event(LOG_EVENT)
    assert (event.event_type, event.message, event.level, event.metadata) == (None, "hello from good", "INFO", {})


def test_a_step_failure_names_the_exception_the_op_raised() -> None:
    event = parse_event(FAILURE_EVENT)
    assert event.error is not None and "\n" not in event.error
    assert event.error.endswith("caused by ValueError: boom in bad"), event.error
    assert event.metadata == {"pod": "step-1"}, "failure metadata is kept"


def test_daemon_health_is_parsed() -> None:
    status = parse_daemon_status({"daemonType": "QUEUED_RUN_COORDINATOR", "healthy": False, "required": True,
                                    "lastHeartbeatTime": 1795530100.5,
                                    "lastHeartbeatErrors": [{"message": "OperationalError: could not\nconnect"}]})
    assert status == g.DaemonStatus("QUEUED_RUN_COORDINATOR", False, True, 1795530100.5,
                                    ["OperationalError: could not connect"])


@pytest.mark.parametrize("entry, loaded, error", [
    ({"name": "w", "loadStatus": "LOADED", "locationOrLoadError": {"__typename": "RepositoryLocation"}}, True, None),
    ({"name": "w", "loadStatus": "LOADING", "locationOrLoadError": None}, False, None),
    ({"name": "w", "loadStatus": "LOADED", "locationOrLoadError": {
        "__typename": "PythonError", "message": "DagsterUserCodeUnreachableError: UNAVAILABLE"}},
     False, "DagsterUserCodeUnreachableError: UNAVAILABLE"),
])
def test_location_load_status_is_parsed(entry: dict[str, Any], loaded: bool, error: str | None) -> None:
    status = parse_location_entry(entry)
    assert (status.loaded, status.error) == (loaded, error), status.describe()


def test_the_raw_queries_match_the_installed_schema() -> None:
    graphql = pytest.importorskip("graphql")
    from dagster_graphql.schema import create_schema

    schema = create_schema().graphql_schema
    for query in RAW_QUERIES:
        errors = graphql.validate(schema, graphql.parse(query))
        assert not errors, f"{query.split('(')[0].split('{')[0].strip()}: {errors}"


