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
