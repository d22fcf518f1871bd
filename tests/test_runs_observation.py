"""Self-tests: reading env and step args off pod specs (no cluster)."""

from __future__ import annotations

import base64
import json
import zlib

from kubernetes import client

from observation.runs import decode_step_args, env_of, env_sources, step_args_json


def test_env_shows_literals_and_names_references() -> None:
    container = client.V1Container(name="c", env=[
        client.V1EnvVar(name="PLAIN", value="x"),
        client.V1EnvVar(name="PW", value_from=client.V1EnvVarSource(
            secret_key_ref=client.V1SecretKeySelector(name="s", key="k"))),
    ], env_from=[client.V1EnvFromSource(config_map_ref=client.V1ConfigMapEnvSource(name="cm")),
                 client.V1EnvFromSource(secret_ref=client.V1SecretEnvSource(name="sec"))])
    assert env_of(container) == {"PLAIN": "x", "PW": "<secret s/k>"}
    assert env_sources(container) == (["cm"], ["sec"])


def test_step_args_are_base64_of_zlib_of_json() -> None:
    payload = {"__class__": "ExecuteStepArgs", "pipeline_run_id": "r1", "step_keys_to_execute": ["report"]}
    encoded = base64.b64encode(zlib.compress(json.dumps(payload).encode())).decode()
    assert json.loads(step_args_json(encoded)) == payload
    assert decode_step_args(encoded)["pipeline_run_id"] == "r1"


def test_most_at_once_counts_overlaps_not_touching_ends() -> None:
    from datetime import datetime, timedelta

    from observation.runs import most_at_once

    t0 = datetime(2026, 1, 1)

    def span(a: int, b: int) -> tuple[datetime, datetime]:
        return t0 + timedelta(seconds=a), t0 + timedelta(seconds=b)

    assert most_at_once([span(0, 4), span(4, 8), span(8, 12)]) == 1
    assert most_at_once([span(0, 4), span(1, 5), span(2, 6), span(5, 9)]) == 3
    assert most_at_once([]) == 0


def _job(name: str, condition: str | None = None, active: int = 0, suspend: bool = False) -> client.V1Job:
    conditions = [client.V1JobCondition(type=condition, status="True")] if condition else None
    return client.V1Job(metadata=client.V1ObjectMeta(name=name), spec=client.V1JobSpec(
        suspend=suspend, template=client.V1PodTemplateSpec()), status=client.V1JobStatus(
        active=active, conditions=conditions))


def _pod(name: str, phase: str, deleting: bool = False) -> client.V1Pod:
    from datetime import datetime

    return client.V1Pod(metadata=client.V1ObjectMeta(name=name, deletion_timestamp=datetime(2026, 1, 1)
                                                      if deleting else None), status=client.V1PodStatus(phase=phase))


def test_what_still_runs_is_unfinished_jobs_and_pending_or_running_pods() -> None:
    from observation.runs import RunFootprint

    found = RunFootprint("r1", run_jobs=[_job("dagster-run-r1", "Failed")],
                         step_jobs=[_job("dagster-step-a", active=1), _job("dagster-step-b", "Complete"),
                                    _job("release", suspend=True)],
                         run_pods=[_pod("dagster-run-r1-x", "Failed")],
                         step_pods=[_pod("dagster-step-a-y", "Running", deleting=True), _pod("dagster-step-c-z",
                                                                                              "Pending")])
    assert found.still_running() == ["Job dagster-step-a (1 active pod(s))",
                                     "pod dagster-step-a-y Running (being deleted)", "pod dagster-step-c-z Pending"]
    assert RunFootprint("r2", run_jobs=[_job("dagster-run-r2", "Complete")]).still_running() == []
