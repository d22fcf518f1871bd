"""What pip put into the Dagster image, read back from its cached layer (for the report's environment)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from images.dagster import dagster_recipe, locked_versions
from reports.session import client_versions


def _layer_with_lock(path: Path, lock: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        data = lock.encode()
        info = tarfile.TarInfo("opt/dagster/requirements.lock")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))


def test_the_image_pins_are_read_from_its_layer_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DKC_CACHE_DIR", str(tmp_path))
    assert locked_versions("1.13.27") == {}  # not built: nothing to say
    layer = dagster_recipe("1.13.27").layer
    _layer_with_lock(layer, "dagster==1.13.27\nKubernetes==36.0.3\n-e something\n")
    assert locked_versions("1.13.27") == {"dagster": "1.13.27", "kubernetes": "36.0.3"}
    layer.unlink()
    layer.touch()  # the pins now come from the file beside the layer
    assert locked_versions("1.13.27")["kubernetes"] == "36.0.3"
    assert client_versions("1.13.27")["Kubernetes client (Dagster image)"] == "36.0.3"
