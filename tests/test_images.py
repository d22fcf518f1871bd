"""Self-tests: OCI archives written without an engine are well-formed and named fully."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from pathlib import Path

import pytest

from images import oci


def test_short_names_are_qualified_like_the_kubelet_does() -> None:
    assert oci.qualify("busybox") == "docker.io/library/busybox"
    assert oci.qualify("local/pause:1") == "docker.io/local/pause:1"
    assert oci.qualify("registry.example:5000/x:1") == "registry.example:5000/x:1"


def test_archive_is_an_oci_layout_with_matching_digests(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    oci.write_layer_from_files([("/bin/tool", b"#!/bin/sh\n", 0o755)], layer, links=[("/bin/alias", "tool")])
    spec = oci.ImageSpec(name="local/thing:abc", entrypoint=["/bin/tool"], env={"A": "1"})
    archive = oci.write_archive(spec, layer, tmp_path / "thing.tar")

    with tarfile.open(archive) as tar:
        blobs = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    index = json.loads(blobs["index.json"])
    entry = index["manifests"][0]
    assert entry["annotations"]["io.containerd.image.name"] == "docker.io/local/thing:abc"
    manifest_bytes = blobs[f"blobs/sha256/{entry['digest'][7:]}"]
    assert hashlib.sha256(manifest_bytes).hexdigest() == entry["digest"][7:]
    manifest = json.loads(manifest_bytes)
    config = json.loads(blobs[f"blobs/sha256/{manifest['config']['digest'][7:]}"])
    assert config["config"]["Entrypoint"] == ["/bin/tool"]
    assert config["config"]["Env"] == ["A=1"]
    layer_digest = manifest["layers"][0]["digest"]
    assert config["rootfs"]["diff_ids"] == [layer_digest]
    # The same image in Docker's own format, for `docker load` before Docker 25.
    [docker] = json.loads(blobs["manifest.json"])
    assert docker == {"Config": f"blobs/sha256/{manifest['config']['digest'][7:]}",
                      "RepoTags": ["docker.io/local/thing:abc"], "Layers": [f"blobs/sha256/{layer_digest[7:]}"]}
    assert hashlib.sha256(blobs[f"blobs/sha256/{layer_digest[7:]}"]).hexdigest() == layer_digest[7:]

    with tarfile.open(layer) as tar:
        link = tar.getmember("bin/alias")
    assert link.issym() and link.linkname == "tool"


def _blobs(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_several_layers_are_stored_bottom_first_with_matching_diff_ids(tmp_path: Path) -> None:
    base, code = tmp_path / "base.tar", tmp_path / "code.tar"
    oci.write_layer_from_files([("/opt/app/base.txt", b"base\n", 0o644)], base)
    oci.write_layer_from_files([("/opt/app/loc/defs.py", b"x = 1\n", 0o644)], code)
    spec = oci.ImageSpec(name="local/loc:1")
    blobs = _blobs(oci.write_archive(spec, [base, code], tmp_path / "loc.tar"))

    index = json.loads(blobs["index.json"])
    manifest = json.loads(blobs[f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"])
    config = json.loads(blobs[f"blobs/sha256/{manifest['config']['digest'][7:]}"])
    expected = ["sha256:" + hashlib.sha256(layer.read_bytes()).hexdigest() for layer in (base, code)]
    assert expected[0] != expected[1]
    assert [layer["digest"] for layer in manifest["layers"]] == expected
    assert config["rootfs"]["diff_ids"] == expected
    assert [layer["size"] for layer in manifest["layers"]] == [base.stat().st_size, code.stat().st_size]
    for digest in expected:
        assert hashlib.sha256(blobs[f"blobs/sha256/{digest[7:]}"]).hexdigest() == digest[7:]
    assert not (tmp_path / "loc.tar.partial").exists()


def test_a_layer_used_twice_is_one_blob(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    oci.write_layer_from_files([("/a", b"a", 0o644)], layer)
    archive = oci.write_archive(oci.ImageSpec(name="local/twice:1"), [layer, layer], tmp_path / "twice.tar")
    with tarfile.open(archive) as tar:
        names = [m.name for m in tar.getmembers()]
    assert len(names) == len(set(names)) == 6  # oci-layout, index, docker's manifest.json, config, manifest, a layer


def test_cached_image_stacks_base_layers_and_keys_on_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DKC_CACHE_DIR", str(tmp_path / "cache"))
    base_a, base_b = tmp_path / "base-aaa.tar", tmp_path / "base-bbb.tar"
    oci.write_layer_from_files([("/base", b"a", 0o644)], base_a)
    oci.write_layer_from_files([("/base", b"b", 0o644)], base_b)
    spec = oci.ImageSpec(name="local/stacked:1")
    calls: list[Path] = []

    def top(out: Path) -> None:
        calls.append(out)
        oci.write_layer_from_files([("/top", b"t", 0o644)], out)

    first = oci.cached_image(spec, ["code-1"], top, base_layers=[base_a])
    assert oci.cached_image(spec, ["code-1"], top, base_layers=[base_a]) == first
    assert len(calls) == 1  # the second call came from the cache
    assert oci.cached_image(spec, ["code-1"], top, base_layers=[base_b]) != first
    assert oci.cached_image(spec, ["code-2"], top, base_layers=[base_a]) != first
    only_base = oci.cached_image(spec, [], base_layers=[base_a])

    manifest_layers = []
    for archive in (first, only_base):
        blobs = _blobs(archive)
        index = json.loads(blobs["index.json"])
        manifest_layers.append(json.loads(blobs[f"blobs/sha256/{index['manifests'][0]['digest'][7:]}"])["layers"])
    assert len(manifest_layers[0]) == 2 and len(manifest_layers[1]) == 1
    assert manifest_layers[0][0] == manifest_layers[1][0]  # the shared base is the same blob
    assert not list((tmp_path / "cache" / "images").glob("*.layer"))


def test_root_filesystem_layers_can_keep_whole_second_mtimes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "lib").mkdir(parents=True)
    (root / "lib" / "mod.py").write_text("x = 1\n")
    os.utime(root / "lib" / "mod.py", (1_700_000_000.75, 1_700_000_000.75))
    kept, reset = tmp_path / "kept.tar", tmp_path / "reset.tar"
    oci.write_layer_from_dir(root, kept, keep_mtime=True)
    oci.write_layer_from_dir(root, reset)
    with tarfile.open(kept) as tar:
        member = tar.getmember("lib/mod.py")
        assert member.mtime == 1_700_000_000 and not member.pax_headers  # no PAX block per file
    with tarfile.open(reset) as tar:
        assert tar.getmember("lib/mod.py").mtime == 0
