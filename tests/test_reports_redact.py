"""A planted secret never survives redaction, in any form evidence is likely to carry it."""

from __future__ import annotations

import base64
import json
import zlib
from pathlib import Path

import pytest

from reports import redact
from reports.redact import MARKER, Redactor

PLANTED = "s3cr3t-PLANTED-value"


@pytest.fixture
def redactor() -> Redactor:
    return Redactor([PLANTED])


def assert_clean(text: str) -> None:
    assert PLANTED not in text, f"planted secret survived in: {text!r}"
    assert base64.b64encode(PLANTED.encode()).decode() not in text, f"its base64 survived in: {text!r}"


@pytest.mark.parametrize("text", [
    f"the password is {PLANTED}, do not tell",
    f"line one\nDAGSTER_PG_PASSWORD_VALUE={PLANTED}\nline three",
    f"postgresql://dagster:{PLANTED}@postgresql:5432/dagster",
    f"redis://:{PLANTED}@redis:6379/0",
])
def test_known_value_never_survives_in_text(redactor: Redactor, text: str) -> None:
    assert_clean(redactor.redact_text(text))


def test_url_quoted_form_of_a_known_value() -> None:
    redactor = Redactor(["p@ss:w/rd"])
    assert "p%40ss%3Aw%2Frd" not in redactor.redact_text("see ?next=p%40ss%3Aw%2Frd")


def test_known_value_in_nested_structures_and_json(redactor: Redactor) -> None:
    pod = {"spec": {"containers": [{"name": "run", "args": ["dagster", "api", "execute_run", PLANTED],
                                    "env": [{"name": "HARMLESS", "value": f"prefix-{PLANTED}-suffix"}]}]},
           "tuple": (PLANTED, 1), "bytes": PLANTED.encode(), PLANTED: "as a key"}
    clean = redactor.redact_obj(pod)
    assert_clean(json.dumps(clean, default=str))
    assert clean["spec"]["containers"][0]["args"][:3] == ["dagster", "api", "execute_run"], "structure kept"
    assert pod["spec"]["containers"][0]["args"][3] == PLANTED, "the input is not modified (deep copy)"


def test_base64_forms_standalone_and_inside_a_longer_stream(redactor: Redactor) -> None:
    standalone = base64.b64encode(PLANTED.encode()).decode()
    assert redactor.redact_text(f"data:\n  password: {standalone}\n") == f"data:\n  password: {MARKER}\n"
    for prefix in (b"", b"a", b"ab"):  # each alignment of the secret inside an encoded stream
        raw = prefix + json.dumps({"pg": PLANTED}).encode()
        stream = base64.b64encode(raw).decode()
        at = raw.index(PLANTED.encode())
        core = stream[-(-8 * at // 6) : 8 * (at + len(PLANTED)) // 6]  # characters made of the secret's bits only
        clean = redactor.redact_text(f"DAGSTER_CONFIG_B64 {stream}")
        assert core not in clean, f"base64 of the secret survived at alignment {len(prefix)}"
        decoded = base64.b64decode(clean.split(" ", 1)[1].replace(MARKER, "A" * len(core)))
        assert len(decoded) == len(raw) and b"s3cr3t" not in decoded and b"PLANTED" not in decoded


def test_json_escaped_and_html_escaped_forms() -> None:
    tricky = 'pa"ss<wo>rd\\1'
    redactor = Redactor([tricky])
    assert tricky not in redactor.redact_text(tricky)
    assert json.dumps(tricky) not in redactor.redact_text(json.dumps({"x": tricky}))
    assert "pa&quot;ss&lt;wo&gt;rd" not in redactor.redact_text("<p>pa&quot;ss&lt;wo&gt;rd\\1</p>")


def test_short_values_are_ignored() -> None:
    redactor = Redactor(["abc", "", None])
    assert redactor.redact_text("abc abcd") == "abc abcd"


def test_values_registered_later_are_redacted_too(redactor: Redactor) -> None:
    assert redactor.redact_text("later-secret-1") == "later-secret-1"
    redactor.add("later-secret-1")
    assert redactor.redact_text("x later-secret-1 y") == f"x {MARKER} y"


def test_kubernetes_secret_data_is_registered_from_base64() -> None:
    redactor = Redactor()
    redactor.add_secret_data({"password": base64.b64encode(PLANTED.encode()).decode()})
    assert_clean(redactor.redact_text(f"value: {PLANTED}"))


PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA" + PLANTED + "\nabc==\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize("text", [PEM, json.dumps({"key": PEM}), PEM.replace("RSA ", ""),
                                  PEM.split("-----END")[0]])  # a truncated log still hides the key
def test_private_key_blocks(text: str) -> None:
    clean = Redactor().redact_text(f"before\n{text}\nafter")
    assert "MIIEowIBAAKCAQEA" not in clean and PLANTED not in clean
    assert clean.startswith("before\n") and "-----BEGIN " in clean and MARKER in clean


@pytest.mark.parametrize(("text", "expected"), [
    ("postgresql://dagster:hunter22@pg:5432/db", "postgresql://dagster:***@pg:5432/db"),
    ("redis://:hunter22@redis:6379", "redis://:***@redis:6379"),
    ("http://pg:5432/x@y and https://host/path", "http://pg:5432/x@y and https://host/path"),
    ("Authorization: Bearer eyJhbGciOi.payload.sig", f"Authorization: Bearer {MARKER}"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNz'", f"curl -H 'Authorization: Basic {MARKER}'"),
    ('{"token": "ghp_abcdef123456"}', f'{{"token": "{MARKER}"}}'),
    ("DB_PASSWORD=hunter22 next", f"DB_PASSWORD={MARKER} next"),
    ("export AWS_SECRET_ACCESS_KEY='abc def'", f"export AWS_SECRET_ACCESS_KEY='{MARKER}'"),
    ("apiKey: k-123456", f"apiKey: {MARKER}"),
    ("?api_key=abcd1234&page=2", f"?api_key={MARKER}&page=2"),
    ('{\\"password\\": \\"hunter22\\"}', f'{{\\"password\\": \\"{MARKER}\\"}}'),
    ("- name: PG_PASSWORD\n  value: hunter22\n- name: PLAIN\n  value: keep",
     f"- name: PG_PASSWORD\n  value: {MARKER}\n- name: PLAIN\n  value: keep"),
    ('{"name": "PG_PASSWORD", "value": "hunter22"}', f'{{"name": "PG_PASSWORD", "value": "{MARKER}"}}'),
    ("{'name': 'PG_PASSWORD',\n 'value': 'hunter22',\n 'value_from': None}",
     f"{{'name': 'PG_PASSWORD',\n 'value': '{MARKER}',\n 'value_from': None}}"),
])
def test_credential_shapes(text: str, expected: str) -> None:
    assert Redactor().redact_text(text) == expected


@pytest.mark.parametrize("text", [
    "secretKeyRef:\n  name: dagster-postgresql-secret\n  key: postgresql-password",
    "valueFrom: {secretKeyRef: {key: password, name: pg}}",
    "secretName: pg-secret",
    "automountServiceAccountToken: false",
    "{'name': 'PG_PASSWORD', 'value': None, 'value_from': {'secret_key_ref': {'name': 'pg'}}}",
    "a run of dagster-run-1234 reached Complete",
])
def test_references_and_ordinary_text_are_kept(text: str) -> None:
    assert Redactor().redact_text(text) == text


def test_structures_redact_values_under_credential_keys_and_env_entries() -> None:
    data = {
        "env": [{"name": "DAGSTER_PG_PASSWORD", "value": "hunter22"}, {"name": "PLAIN", "value": "keep"},
                {"name": "FROM_SECRET", "valueFrom": {"secretKeyRef": {"name": "pg", "key": "password"}}}],
        "config": {"Password": "hunter22", "api_key": b"hunter22", "token": None, "automountServiceAccountToken": True,
                   "secrets": {"nested_token": "hunter22"}},
        "manifest": {"kind": "Secret", "metadata": {"name": "pg"}, "data": {"pw": "aHVudGVyMjI="},
                     "stringData": {"other": "hunter22"}},
    }
    clean = Redactor().redact_obj(data)
    assert "hunter22" not in json.dumps(clean, default=str) and "aHVudGVyMjI=" not in json.dumps(clean)
    assert clean["env"][1] == {"name": "PLAIN", "value": "keep"}
    assert clean["env"][2] == data["env"][2], "secretKeyRef references are evidence, not secrets"
    assert clean["config"]["token"] is None and clean["config"]["automountServiceAccountToken"] is True
    assert clean["manifest"]["metadata"] == {"name": "pg"} and clean["manifest"]["data"] == {"pw": MARKER}


def test_bytes_that_are_not_text_pass_through(redactor: Redactor) -> None:
    blob = zlib.compress(b"binary") + b"\xff\x00" + PLANTED.encode()
    clean = redactor.redact_bytes(blob)
    assert clean.startswith(zlib.compress(b"binary") + b"\xff\x00") and PLANTED.encode() not in clean


def test_a_planted_secret_never_reaches_a_results_tree(tmp_path: Path, redactor: Redactor) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "a-attachment.attach").write_text(f"captured stdout: {PLANTED}")
    (tmp_path / "sub" / "b-result.json").write_text(json.dumps({"message": f"x {PLANTED}"}))
    (tmp_path / "junit.xml").write_text(f"<system-out>{base64.b64encode(PLANTED.encode()).decode()}</system-out>")
    png = b"\x89PNG\r\n" + PLANTED.encode()
    (tmp_path / "timeline.png").write_bytes(png)
    changed = redactor.redact_tree(tmp_path)
    assert len(changed) == 3
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.suffix != ".png":
            assert_clean(path.read_text())
    assert (tmp_path / "timeline.png").read_bytes() == png, "images are left alone"


def test_module_level_default_redactor() -> None:
    assert redact.redact_text("DB_PASSWORD=x1234") == f"DB_PASSWORD={MARKER}"
    redact.register_secret("module-level-secret-42")
    assert redact.redact_text("a module-level-secret-42 b") == f"a {MARKER} b"
    assert redact.redact_obj(["module-level-secret-42"]) == [MARKER]
    assert redact.redact_bytes(b"module-level-secret-42") == MARKER.encode()
