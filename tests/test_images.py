"""Self-tests: OCI archives written without an engine are well-formed and named fully."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from clusters import images


def test_short_names_are_qualified_like_the_kubelet_does() -> None:
    assert images.qualify("busybox") == "docker.io/library/busybox"
    assert images.qualify("local/pause:1") == "docker.io/local/pause:1"
    assert images.qualify("registry.example:5000/x:1") == "registry.example:5000/x:1"


def test_archive_is_an_oci_layout_with_matching_digests(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    images.write_layer_from_files([("/bin/tool", b"#!/bin/sh\n", 0o755)], layer, links=[("/bin/alias", "tool")])
    spec = images.ImageSpec(name="local/thing:abc", entrypoint=["/bin/tool"], env={"A": "1"})
    archive = images.write_archive(spec, layer, tmp_path / "thing.tar")

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
    assert hashlib.sha256(blobs[f"blobs/sha256/{layer_digest[7:]}"]).hexdigest() == layer_digest[7:]

    with tarfile.open(layer) as tar:
        link = tar.getmember("bin/alias")
    assert link.issym() and link.linkname == "tool"
