"""The raw GraphQL queries: what ``DagsterGraphQLClient`` lacks (tags and lineage of a run, its event log, runs by
tag, ticks, captured logs, daemon health, version, workspace load status). The self-tests validate every one
against the installed dagster-graphql schema."""

from __future__ import annotations

RUN_FIELDS = """
fragment runFields on Run {
  runId status jobName tags { key value } parentRunId rootRunId creationTime startTime endTime
}
"""

RUN_QUERY = """
query RunInfo($runId: ID!) {
  runOrError(runId: $runId) { __typename ...runFields ... on Error { message } }
}
""" + RUN_FIELDS

RUNS_QUERY = """
query Runs($filter: RunsFilter, $limit: Int) {
  runsOrError(filter: $filter, limit: $limit) {
    __typename ... on Runs { results { ...runFields } } ... on Error { message }
  }
}
""" + RUN_FIELDS

METADATA_FIELDS = """
fragment metadataFields on MetadataEntry {
  __typename label
  ... on TextMetadataEntry { text }
  ... on IntMetadataEntry { intRepr }
  ... on FloatMetadataEntry { floatValue }
  ... on BoolMetadataEntry { boolValue }
  ... on JsonMetadataEntry { jsonString }
  ... on MarkdownMetadataEntry { mdStr }
  ... on PathMetadataEntry { path }
  ... on NotebookMetadataEntry { path }
  ... on UrlMetadataEntry { url }
  ... on PipelineRunMetadataEntry { runId }
  ... on JobMetadataEntry { jobName }
  ... on TimestampMetadataEntry { timestamp }
  ... on PoolMetadataEntry { pool }
  ... on AssetMetadataEntry { assetKey { path } }
}
"""

EVENTS_QUERY = """
query RunEvents($runId: ID!, $cursor: String, $limit: Int) {
  logsForRun(runId: $runId, afterCursor: $cursor, limit: $limit) {
    __typename
    ... on EventConnection {
      cursor hasMore
      events {
        __typename
        ... on MessageEvent { eventType stepKey message timestamp level }
        ... on DisplayableEvent { metadataEntries { ...metadataFields } }
        ... on ErrorEvent { error { message causes { message } } }
        ... on ExecutionStepFailureEvent { failureMetadata { metadataEntries { ...metadataFields } } }
        ... on LogsCapturedEvent { fileKey stepKeys }
      }
    }
    ... on Error { message }
  }
}
""" + METADATA_FIELDS

TICKS_QUERY = """
query Ticks($schedule: ScheduleSelector!, $sensor: SensorSelector!, $isSchedule: Boolean!, $limit: Int!) {
  scheduleOrError(scheduleSelector: $schedule) @include(if: $isSchedule) {
    __typename
    ... on Schedule { scheduleState { ticks(limit: $limit) { timestamp status } } }
    ... on PythonError { message }
    ... on ScheduleNotFoundError { message }
  }
  sensorOrError(sensorSelector: $sensor) @skip(if: $isSchedule) {
    __typename
    ... on Sensor { sensorState { ticks(limit: $limit) { timestamp status } } }
    ... on PythonError { message }
    ... on SensorNotFoundError { message }
  }
}
"""

CAPTURED_LOGS_QUERY = """
query CapturedLogs($logKey: [String!]!) {
  capturedLogs(logKey: $logKey) { stdout stderr }
}
"""

DAEMON_HEALTH_QUERY = """
query DaemonHealth {
  instance {
    daemonHealth {
      allDaemonStatuses { daemonType healthy required lastHeartbeatTime lastHeartbeatErrors { message } }
    }
  }
}
"""

WORKSPACE_QUERY = """
query Workspace {
  workspaceOrError {
    __typename
    ... on Workspace {
      locationEntries { name loadStatus locationOrLoadError { __typename ... on PythonError { message } } }
    }
    ... on PythonError { message }
  }
}
"""

VERSION_QUERY = "query Version { version }"

RAW_QUERIES = (RUN_QUERY, RUNS_QUERY, EVENTS_QUERY, TICKS_QUERY, CAPTURED_LOGS_QUERY, DAEMON_HEALTH_QUERY,
               WORKSPACE_QUERY, VERSION_QUERY)


# ---------------------------------------------------------------------------------------------------------------------
