"""Installing the Allure CLI and generating HTML: one-line errors with fakes, then the real thing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from reports import allure_cli
from reports.allure_cli import ALLURE_VERSION, AllureError, allure_binary, ensure_allure, generate_html, install_dir


def executable(path: Path, script: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(0o755)
    return path


@pytest.fixture
def fake_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH holding only a fake java (and what sh needs); locks under a scratch cache."""
    bin_dir = tmp_path / "bin"
    executable(bin_dir / "java", "exit 0\n")
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("DKC_CACHE_DIR", str(tmp_path / "cache"))
    real_which = shutil.which
    monkeypatch.setattr(allure_cli.shutil, "which", lambda name: real_which(name, path=str(bin_dir)))
    return bin_dir


FAKE_NPM = f"""
while [ $# -gt 0 ]; do [ "$1" = --prefix ] && prefix=$2; shift; done
bin="$prefix/node_modules/allure-commandline/dist/bin"
mkdir -p "$bin"
printf '#!/bin/sh\\necho {ALLURE_VERSION}\\n' > "$bin/allure"
chmod +x "$bin/allure"
"""


def test_missing_java_is_one_line_with_the_fix(fake_path: Path, tmp_path: Path) -> None:
    (fake_path / "java").unlink()
    with pytest.raises(AllureError, match="apt-get install openjdk-17-jre-headless") as failure:
        ensure_allure(tmp_path / "cache")
    assert "\n" not in str(failure.value)


def test_missing_npm_is_one_line_with_the_fix(fake_path: Path, tmp_path: Path) -> None:
    with pytest.raises(AllureError, match="apt-get install nodejs npm"):
        ensure_allure(tmp_path / "cache")


def test_an_installed_allure_is_reused_without_npm(fake_path: Path, tmp_path: Path) -> None:
    binary = executable(allure_binary(tmp_path / "cache"), f"echo {ALLURE_VERSION}\n")
    assert ensure_allure(tmp_path / "cache") == binary


def test_install_into_the_cache_prints_progress(fake_path: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    executable(fake_path / "npm", FAKE_NPM)
    binary = ensure_allure(tmp_path / "cache")
    assert binary == allure_binary(tmp_path / "cache") and binary.is_file()
    assert binary.is_relative_to(install_dir(tmp_path / "cache"))
    err = capsys.readouterr().err
    assert f"• Installing Allure {ALLURE_VERSION}" in err and f"✓ Installing Allure {ALLURE_VERSION}" in err
    left = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert left == [f"allure-{ALLURE_VERSION}", "locks"], "no staging directory left"


def test_a_failed_install_leaves_nothing_half_made(fake_path: Path, tmp_path: Path) -> None:
    executable(fake_path / "npm", "echo 'npm error code E404' >&2\nexit 1\n")
    with pytest.raises(AllureError, match=r"npm install allure-commandline@.* failed \(npm error code E404\)"):
        ensure_allure(tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir()] == ["locks"], "no half-made install left"


def test_a_broken_java_fails_the_version_check(fake_path: Path, tmp_path: Path) -> None:
    executable(fake_path / "npm", FAKE_NPM.replace(f"echo {ALLURE_VERSION}", "echo no java >&2; exit 1"))
    with pytest.raises(AllureError, match=r"--version failed.*java -version"):
        ensure_allure(tmp_path / "cache")


def test_generate_needs_results(tmp_path: Path) -> None:
    with pytest.raises(AllureError, match="run pytest with --alluredir"):
        generate_html(tmp_path / "missing", tmp_path / "html", allure=tmp_path / "allure")


def test_generate_with_a_fake_allure(tmp_path: Path) -> None:
    calls = tmp_path / "calls"
    fake = executable(tmp_path / "allure", f'echo "$@" > {calls}\n'
                                           'while [ $# -gt 1 ]; do [ "$1" = --output ] && out=$2; shift; done\n'
                                           'mkdir -p "$out" && echo "<html>" > "$out/index.html"\n')
    (tmp_path / "results").mkdir()
    index = generate_html(tmp_path / "results", tmp_path / "html", allure=fake)
    assert index == tmp_path / "html" / "index.html" and index.is_file()
    assert "generate --clean" in calls.read_text() and "--single-file" in calls.read_text()


def test_generate_failure_is_one_line(tmp_path: Path) -> None:
    fake = executable(tmp_path / "allure", "echo 'Exception in thread main' >&2\nexit 1\n")
    (tmp_path / "results").mkdir()
    with pytest.raises(AllureError, match="allure generate failed \\(Exception in thread main\\)"):
        generate_html(tmp_path / "results", tmp_path / "html", allure=fake)


@pytest.mark.skipif(not (shutil.which("java") or os.environ.get("JAVA_HOME")) or not shutil.which("npm"),
                    reason="the real Allure CLI needs java and npm: apt-get install openjdk-17-jre-headless nodejs npm")
def test_the_real_allure_makes_html_from_real_results(tmp_path: Path) -> None:
    """Install (or reuse) the real CLI in the shared cache, then report on a throwaway pytest session."""
    from images.cache import cache_root

    (tmp_path / "test_tiny.py").write_text(
        "import pytest\n\ndef test_ok():\n    pass\n\ndef test_bad():\n    assert 1 == 2\n\n"
        "@pytest.mark.xfail(reason='upstream', strict=True)\ndef test_known():\n    assert False\n")
    results = tmp_path / "results"
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--alluredir={results}",
                           "test_tiny.py"], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    index = generate_html(results, tmp_path / "html", allure=ensure_allure(cache_root()))
    assert index.is_file() and "allure" in index.read_text(encoding="utf-8", errors="replace").lower()
