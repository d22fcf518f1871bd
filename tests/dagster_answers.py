"""Answers a Dagster webserver gives, as the self-tests of the Dagster client feed them."""

from __future__ import annotations

RUN_NODE = {
    "__typename": "Run", "runId": "b2", "status": "FAILURE", "jobName": "demo",
    "tags": [{"key": "dagster/code_location", "value": "workloads"}, {"key": "dagster/parent_run_id", "value": "a1"},
             {"key": "suite", "value": "c07"}],
    "parentRunId": "a1", "rootRunId": "a0", "creationTime": 1795530181.8, "startTime": 1795530185.4, "endTime": None,
}
OUTPUT_EVENT = {
    "__typename": "ExecutionStepOutputEvent", "eventType": "STEP_OUTPUT", "stepKey": "good",
    "message": 'Yielded output "result" of type "Any". (Type check passed).', "timestamp": "1795530243192",
    "level": "DEBUG",
    "metadataEntries": [
        {"__typename": "IntMetadataEntry", "label": "rows", "intRepr": "3"},
        {"__typename": "TextMetadataEntry", "label": "note", "text": "fine"},
        {"__typename": "FloatMetadataEntry", "label": "ratio", "floatValue": 0.5},
        {"__typename": "BoolMetadataEntry", "label": "flag", "boolValue": True},
        {"__typename": "JsonMetadataEntry", "label": "js", "jsonString": '{"a": 1}'},
        {"__typename": "AssetMetadataEntry", "label": "asset", "assetKey": {"path": ["raw", "orders"]}},
        {"__typename": "TableMetadataEntry", "label": "table"},
    ],
}
LOG_EVENT = {"__typename": "LogMessageEvent", "eventType": None, "stepKey": "good", "message": "hello from good",
             "timestamp": "1795530243173", "level": "INFO"}
FAILURE_EVENT = {
    "__typename": "ExecutionStepFailureEvent", "eventType": "STEP_FAILURE", "stepKey": "bad",
    "message": 'Execution of step "bad" failed.', "timestamp": "1795530246324", "level": "ERROR",
    "error": {"message": 'dagster._core.errors.DagsterExecutionStepExecutionError: Error occurred while executing op '
                         '"bad":\n', "causes": [{"message": "ValueError: boom in bad\n"}]},
    "failureMetadata": {"metadataEntries": [{"__typename": "TextMetadataEntry", "label": "pod", "text": "step-1"}]},
}
