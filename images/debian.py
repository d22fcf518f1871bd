"""Files from Debian packages, fetched with the machine's own apt configuration."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from common.errors import BuildError, PreflightError
from images.cache import cache_root


def download_deb(package: str) -> Path:
    """The package's .deb from the configured Debian mirror, cached by its file name (name_version_arch)."""
    if shutil.which("apt-get") is None:
        raise PreflightError("apt-get is not available: images are built from Debian packages on a Debian host")
    target = cache_root() / "debs"
    target.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as work:
        proc = subprocess.run(["apt-get", "download", package], cwd=work, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BuildError(f"apt-get download {package} failed ({proc.stderr.strip()[-200:]}); "
                             "run `apt-get update` and retry")
        deb = next(Path(work).glob("*.deb"))
        cached = target / deb.name
        if not cached.exists():
            shutil.move(deb, cached)
    return cached


def extract(deb: Path, into: Path) -> None:
    into.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
