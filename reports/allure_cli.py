"""The Allure command line: installed once from the npm registry into the cache, then used to make HTML.

The npm package ``allure-commandline`` carries the whole Allure 2 distribution (its jars and the
``allure`` launcher), so ``npm install`` is the download; running it needs a Java runtime (>= 8).
Prerequisites on Debian: ``nodejs``, ``npm`` and ``openjdk-17-jre-headless`` (or any JRE).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from common.errors import DkcError
from common.progress import phase
from images.cache import cache_root, lock

__all__ = ["ALLURE_VERSION", "HISTORY", "AllureError", "allure_binary", "carry_history", "ensure_allure",
           "export_history", "generate_html", "install_dir"]

ALLURE_VERSION = "2.46.1"
PACKAGE = "allure-commandline"
INSTALL_TIMEOUT = 600
GENERATE_TIMEOUT = 600
HISTORY = "history"  # Allure's trend files: in a report's history/, read back from the results' history/


class AllureError(DkcError):
    """Allure could not be installed or could not generate the report (one line: what, then what to do)."""


def install_dir(cache_dir: Path, version: str = ALLURE_VERSION) -> Path:
    return cache_dir / f"allure-{version}"


def allure_binary(cache_dir: Path, version: str = ALLURE_VERSION) -> Path:
    """Where ``ensure_allure`` puts the launcher of ``version``."""
    return install_dir(cache_dir, version) / "node_modules" / PACKAGE / "dist" / "bin" / "allure"


def _java() -> str | None:
    """The java Allure's launcher will use: $JAVA_HOME/bin/java first, as the launcher does, else PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _last_lines(text: str, count: int = 3) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip() and "npm warn" not in line.lower()]
    return " / ".join(lines[-count:]) or "no output"


def _check_java() -> None:
    if _java() is None:
        raise AllureError("Allure needs Java, and none was found: apt-get install openjdk-17-jre-headless "
                          "(or set JAVA_HOME)")


def _check_version(binary: Path, version: str) -> None:
    """Run ``allure --version``: proves the install and the Java runtime work together."""
    try:
        done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AllureError(f"{binary} --version did not run ({exc}): remove {binary.parents[4]} and retry") from exc
    if done.returncode != 0 or version not in done.stdout:
        raise AllureError(f"{binary} --version failed ({_last_lines(done.stdout + done.stderr)}): check that "
                          "java -version works, or remove the install and retry")


def ensure_allure(cache_dir: Path, version: str = ALLURE_VERSION) -> Path:
    """The Allure launcher, installed into ``cache_dir/allure-<version>`` on first use; returns its path.

    Installs into a temporary directory next to the final one and renames it, so an interrupted install
    never leaves a half-made Allure behind; a lock keeps parallel sessions from installing twice.
    """
    _check_java()
    binary = allure_binary(cache_dir, version)
    if binary.is_file():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        raise AllureError("installing Allure needs npm, and none was found: apt-get install nodejs npm")
    cache_dir.mkdir(parents=True, exist_ok=True)
    with lock(f"allure-{version}"):
        if binary.is_file():
            return binary  # another process installed it while we waited
        with phase(f"Installing Allure {version} into {install_dir(cache_dir, version)}"):
            _npm_install(npm, cache_dir, version)
            _check_version(binary, version)
    return binary


def _npm_install(npm: str, cache_dir: Path, version: str) -> None:
    final = install_dir(cache_dir, version)
    staging = Path(tempfile.mkdtemp(prefix=f".allure-{version}-", dir=cache_dir))
    try:
        command = [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--no-save",
                   "--no-package-lock", "--loglevel=error", f"{PACKAGE}@{version}"]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise AllureError(f"npm install {PACKAGE}@{version} took over {INSTALL_TIMEOUT}s: check that the "
                              "npm registry is reachable (npm ping) and retry") from exc
        if done.returncode != 0:
            raise AllureError(f"npm install {PACKAGE}@{version} failed ({_last_lines(done.stderr + done.stdout)}): "
                              "check that the npm registry is reachable (npm ping) and retry")
        shutil.rmtree(final, ignore_errors=True)  # a broken earlier install (launcher missing)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def generate_html(results_dir: Path, out_dir: Path, *, allure: Path | None = None, single_file: bool = True,
                  name: str = "Dagster on Kubernetes conformance") -> Path:
    """Generate the HTML report from ``results_dir`` into ``out_dir`` (replacing it); returns index.html.

    ``single_file`` embeds the data in index.html, so the report opens straight from disk (file://);
    without it, the report must be served over HTTP (``allure open``).
    """
    if not results_dir.is_dir():
        raise AllureError(f"no Allure results in {results_dir}: run pytest with --alluredir={results_dir} first")
    binary = allure or ensure_allure(cache_root())
    command = [str(binary), "generate", "--clean", "--output", str(out_dir), "--name", name]
    command += ["--single-file"] if single_file else []
    with phase(f"Generating the Allure report into {out_dir}"):
        try:
            done = subprocess.run([*command, str(results_dir)], capture_output=True, text=True,
                                  timeout=GENERATE_TIMEOUT, check=False)
        except subprocess.TimeoutExpired as exc:
            raise AllureError(f"allure generate took over {GENERATE_TIMEOUT}s on {results_dir}") from exc
        index = out_dir / "index.html"
        if done.returncode != 0 or not index.is_file():
            raise AllureError(f"allure generate failed ({_last_lines(done.stdout + done.stderr)}): "
                              f"check {results_dir} holds *-result.json files")
    return index


def carry_history(previous_report: Path, results_dir: Path) -> bool:
    """Put an earlier report's Allure history into ``results_dir`` so the next report shows trends across both;
    False when that report has none (made before history was kept)."""
    source = previous_report / HISTORY
    if not source.is_dir():
        return False
    target = results_dir / HISTORY
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return True


def export_history(results_dir: Path, report_dir: Path, *, allure: Path | None = None) -> Path:
    """Write the history of the report made from ``results_dir`` into ``report_dir/history``. A single-file report
    keeps no history files, so this generates a multi-file report aside and keeps only its history."""
    with tempfile.TemporaryDirectory(prefix="dkc-allure-") as scratch:
        index = generate_html(results_dir, Path(scratch) / "report", allure=allure, single_file=False)
        target = report_dir / HISTORY
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(index.parent / HISTORY, target)
    return target
