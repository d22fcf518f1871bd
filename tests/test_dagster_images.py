"""Self-tests: Dagster versions map to their libraries, bad versions fail before any build, and image
tags follow the code they hold. Nothing here needs root or the network."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from common.errors import PreflightError
from images import dagster as di

PIP_INDEX_OUTPUT = """\
dagster (1.13.29)
Available versions: 1.13.29, 1.13.28, 1.13.27, 1.12.22
  INSTALLED: 1.13.27
  LATEST:    1.13.29
"""


@pytest.mark.parametrize(("core", "libraries"), [("1.13.27", "0.29.27"), ("1.0.0", "0.16.0"), ("1.9.13", "0.25.13")])
def test_libraries_version_is_minor_plus_sixteen(core: str, libraries: str) -> None:
    assert di.libraries_version(core) == libraries


@pytest.mark.parametrize("bad", ["1.13", "2.0.0", "v1.13.27", "1.13.27rc1", "latest", ""])
def test_malformed_versions_fail_in_one_line_without_asking_the_index(bad: str, monkeypatch: pytest.MonkeyPatch
                                                                     ) -> None:
    def no_network(package: str) -> list[str]:
        raise AssertionError("the index must not be asked about a malformed version")

    monkeypatch.setattr(di, "published_versions", no_network)
    with pytest.raises(PreflightError, match=r"is not of the form 1\.X\.Y") as caught:
        di.check_dagster_version(bad)
    assert "\n" not in str(caught.value)


def test_index_output_is_parsed() -> None:
    assert di.parse_index_versions(PIP_INDEX_OUTPUT) == ["1.13.29", "1.13.28", "1.13.27", "1.12.22"]
    assert di.parse_index_versions("ERROR: No matching distribution found for nope\n") == []


def _fake_index(monkeypatch: pytest.MonkeyPatch, core: list[str], libraries: list[str]) -> None:
    published = {**{p: core for p in di.CORE_PACKAGES}, **{p: libraries for p in di.LIBRARY_PACKAGES}}
    monkeypatch.setattr(di, "published_versions", lambda package: published.get(package, []))


def test_an_unpublished_release_fails_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_index(monkeypatch, ["1.13.29", "1.13.27"], ["0.29.27"])
    di.check_dagster_version("1.13.27")
    with pytest.raises(PreflightError, match=r"^dagster 1\.13\.99 is not a published release \(newest published: "
                                             r"1\.13\.29\); pick a published Dagster version, e\.g\. 1\.13\.27$"):
        di.check_dagster_version("1.13.99")


def test_a_core_release_without_its_libraries_fails_too(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_index(monkeypatch, ["1.13.29", "1.13.27"], ["0.29.27"])
    with pytest.raises(PreflightError, match=r"^dagster-k8s 0\.29\.29 \(for Dagster 1\.13\.29\) is not a published"):
        di.check_dagster_version("1.13.29")


def test_every_library_is_checked_and_the_newest_complete_release_of_the_line_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # As the index was on 2026-12-02: dagster and dagster-graphql 1.13.29, the webserver 1.13.28, the rest 1.13.27.
    published = {p: ["1.13.29", "1.13.28", "1.13.27", "1.12.22"] for p in di.CORE_PACKAGES}
    published["dagster-webserver"] = ["1.13.28", "1.13.27", "1.12.22"]
    published.update({p: ["0.29.28", "0.29.27", "0.28.22"] for p in di.LIBRARY_PACKAGES})
    published["dagster-celery-k8s"] = ["0.29.27", "0.28.22"]
    monkeypatch.setattr(di, "published_versions", lambda package: published[package])
    with pytest.raises(PreflightError, match=r"^dagster-celery-k8s 0\.29\.28 .* e\.g\. 1\.13\.27$"):
        di.check_dagster_version("1.13.28")
    assert di.newest_complete_release(12, published) == "1.12.22"
    assert di.newest_complete_release(11, published) is None


def test_requirements_pin_the_release_keep_sqlalchemy_below_2_1_and_leave_out_kubernetes_36_0_0() -> None:
    requirements = di.dagster_requirements("1.13.27")
    for pin in ("dagster==1.13.27", "dagster-webserver==1.13.27", "dagster-graphql==1.13.27", "dagster-k8s==0.29.27",
                "dagster-postgres==0.29.27", "dagster-celery==0.29.27", "dagster-celery-k8s==0.29.27"):
        assert pin in requirements
    assert "sqlalchemy>=2.0,<2.1" in requirements
    assert "kubernetes!=36.0.0" in requirements  # dagster-io/dagster#33870
    assert any(r.startswith("celery[redis]") for r in requirements)


def test_dagster_recipe_changes_with_the_version() -> None:
    assert di.dagster_recipe("1.13.27").key != di.dagster_recipe("1.13.26").key
    recipe = di.dagster_recipe()
    assert {"python3", "python3-venv", "ca-certificates", "tini"} <= set(recipe.packages)
    assert di.DAGSTER_HOME in recipe.dirs and recipe.venv == "/opt/dagster"


def test_dagster_spec_runs_under_tini_with_the_venv_first() -> None:
    spec = di.dagster_spec("local/dagster", "1.13.27-abc", "1.13.27")
    assert spec.reference == "docker.io/local/dagster:1.13.27-abc"
    assert spec.entrypoint == ["/usr/bin/tini", "--"]
    assert spec.env["PATH"].startswith("/opt/dagster/bin:")
    assert spec.env["DAGSTER_HOME"] == "/opt/dagster/dagster_home" and spec.workdir == "/opt/dagster/app"


def _location(root: Path, body: str) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "definitions.py").write_text(body)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "definitions.cpython-311.pyc").write_bytes(b"\0")
    (root / ".hidden").write_text("x")
    return root


def test_code_location_tags_differ_with_the_code_and_the_base(tmp_path: Path) -> None:
    one = di.code_files(_location(tmp_path / "one", "x = 1\n"))
    two = di.code_files(_location(tmp_path / "two", "x = 2\n"))
    same = di.code_files(_location(tmp_path / "same", "x = 1\n"))
    assert [relative for relative, _, _ in one] == ["definitions.py", "pkg/__init__.py"]
    tag = di.code_location_spec("loc", one, "base1", "1.13.27").tag
    assert tag.startswith("1.13.27-")
    assert di.code_location_spec("loc", same, "base1", "1.13.27").tag == tag
    assert di.code_location_spec("loc", two, "base1", "1.13.27").tag != tag
    assert di.code_location_spec("loc", one, "base2", "1.13.27").tag != tag
    assert di.code_location_spec("loc", one, "base1", "1.13.27").reference.startswith(
        "docker.io/local/dagster-code-loc:")


def test_code_location_names_are_checked_before_any_build(tmp_path: Path) -> None:
    with pytest.raises(PreflightError, match="must be lower-case"):
        di.code_location_image("Bad Name", tmp_path)
    with pytest.raises(PreflightError, match="no Python file"):
        di.code_location_image("empty", tmp_path)


@pytest.mark.skipif(shutil.which("sh") is None, reason="needs a POSIX shell")
def test_postgres_entrypoint_is_valid_shell_and_uses_the_env() -> None:
    script = di.POSTGRES_ENTRYPOINT_SCRIPT
    assert subprocess.run(["sh", "-n"], input=script, text=True).returncode == 0
    for needed in ("POSTGRES_PASSWORD", "POSTGRES_DB:-dagster", "--pwfile=", "listen_addresses = '*'",
                   "0.0.0.0/0 scram-sha-256", "exec setpriv", "/usr/lib/postgresql/15/bin", "/var/lib/postgresql/data"):
        assert needed in script


def test_redis_runs_in_the_foreground_without_persistence() -> None:
    assert di.REDIS_COMMAND == ["redis-server", "--protected-mode", "no", "--bind", "0.0.0.0", "--save", "",
                                "--appendonly", "no"]


def test_each_sample_location_image_is_built_from_a_private_copy_that_is_removed_afterwards(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DKC_CACHE_DIR", str(tmp_path))
    seen: list[tuple[Path, str, list[str]]] = []

    def build(name: str, source: Path, version: str) -> tuple[str, Path]:
        seen.append((source, (source / "location.txt").read_text(), sorted(p.name for p in source.iterdir())))
        return f"local/dagster-code-{name}:x", tmp_path / "x.tar"

    monkeypatch.setattr(di, "code_location_image", build)
    di.sample_location_image("alpha")
    di.sample_location_image("alpha")

    (first, text, files), (second, _, _) = seen
    assert first != second, "two builds shared one staging directory"
    assert text == "alpha\n" and "definitions.py" in files
    assert not first.exists() and not second.exists()
    assert list((tmp_path / "locations").iterdir()) == []
