"""OCI image archives written without a container engine or a registry.

An image here is one or more uncompressed layers (a root filesystem directory, or a few files),
bottom first, plus a config. Several layers let images share one: every code location's image is
the Dagster base layer plus a small layer of its own code, so the runtime stores the base once.
The archive is an OCI layout in a tar, annotated with the image's fully qualified name, which
``ctr images import`` and ``kind load image-archive`` both understand.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LAYER_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar"
CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"


# Bump when what write_archive puts in an archive changes, so cached archives are written again (2: manifest.json).
ARCHIVE_FORMAT = "2"


def qualify(name: str) -> str:
    """The kubelet normalizes short names, so images are always imported fully qualified.

    >>> qualify("local/pause:1")
    'docker.io/local/pause:1'
    """
    first = name.split("/", 1)[0]
    if "/" not in name:
        return f"docker.io/library/{name}"
    if "." in first or ":" in first or first == "localhost":
        return name
    return f"docker.io/{name}"


@dataclass
class ImageSpec:
    """What goes into an image's config."""

    name: str
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    workdir: str = "/"
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def reference(self) -> str:
        return qualify(self.name)

    @property
    def tag(self) -> str:
        last = self.reference.rsplit("/", 1)[-1]
        return last.split(":", 1)[1] if ":" in last else "latest"


def _reset(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Reproducible layers: no timestamps or owner names from the build machine (ids are kept)."""
    info.mtime = 0
    info.uname = info.gname = ""
    return info


def _keep_mtime(info: tarfile.TarInfo) -> tarfile.TarInfo:
    # Whole seconds fit the ustar header; a fraction would add a PAX header block to every file.
    info.mtime = int(info.mtime)
    info.uname = info.gname = ""
    return info


def write_layer_from_dir(rootfs: Path, out: Path, keep_mtime: bool = False) -> None:
    """Tar a root filesystem directory as one layer (paths relative to /, owners kept).

    ``keep_mtime`` keeps the files' modification times. A root filesystem with Python in it needs
    them: a .pyc records its source's mtime, and with every mtime reset to 0 each of them is stale,
    so every container start recompiles every module it imports (dagster: 6 s instead of 3 s).
    """
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for entry in sorted(os.listdir(rootfs)):
            tar.add(rootfs / entry, arcname=entry, recursive=True, filter=_keep_mtime if keep_mtime else _reset)


def write_layer_from_files(
    files: Iterable[tuple[str, Path | bytes, int]], out: Path, links: Iterable[tuple[str, str]] = ()
) -> None:
    """A layer of single files, (path in image, source file or bytes, mode), and symlinks (path, target)."""
    made_dirs: set[str] = set()

    def parents(tar: tarfile.TarFile, target: str) -> None:
        parts = target.strip("/").split("/")
        for depth in range(1, len(parts)):
            directory = "/".join(parts[:depth])
            if directory not in made_dirs:
                info = tarfile.TarInfo(directory)
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                made_dirs.add(directory)

    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        for target, source, mode in files:
            parents(tar, target)
            data = source if isinstance(source, bytes) else Path(source).read_bytes()
            info = tarfile.TarInfo(target.strip("/"))
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
        for path, link_target in links:
            parents(tar, path)
            info = tarfile.TarInfo(path.strip("/"))
            info.type, info.linkname = tarfile.SYMTYPE, link_target
            tar.addfile(info)


def _sha256_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest(), path.stat().st_size


def image_config(spec: ImageSpec, layer_digests: str | Sequence[str]) -> dict:
    """The OCI config; ``diff_ids`` lists the uncompressed layers' digests bottom first."""
    diff_ids = [layer_digests] if isinstance(layer_digests, str) else list(layer_digests)
    config: dict = {"Env": [f"{k}={v}" for k, v in spec.env.items()], "WorkingDir": spec.workdir}
    if spec.entrypoint:
        config["Entrypoint"] = spec.entrypoint
    if spec.cmd:
        config["Cmd"] = spec.cmd
    if spec.labels:
        config["Labels"] = spec.labels
    return {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }


def write_archive(spec: ImageSpec, layers: Path | Sequence[Path], out: Path) -> Path:
    """Write an OCI-layout tar holding one image made of ``layers`` (uncompressed tars, bottom first).

    A single path is one layer, as before. Layers are stored uncompressed, so each blob's digest is
    also its diff_id. The archive is written beside ``out`` and renamed, so a killed build leaves none.
    """
    layer_paths = [layers] if isinstance(layers, Path) else list(layers)
    if not layer_paths:
        raise ValueError(f"image {spec.reference} needs at least one layer")
    digests = [_sha256_file(layer) for layer in layer_paths]
    config = json.dumps(image_config(spec, [digest for digest, _ in digests]), sort_keys=True).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": {"mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": len(config)},
        "layers": [{"mediaType": LAYER_MEDIA_TYPE, "digest": digest, "size": size} for digest, size in digests],
    }, sort_keys=True).encode()
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE, "digest": manifest_digest, "size": len(manifest),
            "annotations": {
                "io.containerd.image.name": spec.reference,
                "org.opencontainers.image.ref.name": spec.tag,
            },
        }],
    }, sort_keys=True).encode()

    partial = out.with_name(out.name + ".partial")
    try:
        _write_layout(partial, layer_paths, digests, index, (config_digest, config), (manifest_digest, manifest))
        partial.rename(out)
    finally:
        partial.unlink(missing_ok=True)
    return out


def _write_layout(
    path: Path, layer_paths: list[Path], digests: list[tuple[str, int]], index: bytes,
    config: tuple[str, bytes], manifest: tuple[str, bytes],
) -> None:
    with tarfile.open(path, "w") as tar:
        def add_bytes(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))

        add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add_bytes("index.json", index)
        # Docker before 25 loads only its own format (manifest.json naming the config and layer files): with it,
        # the same archive also goes into `docker load` (kind's node image).
        reference = json.loads(index)["manifests"][0]["annotations"]["io.containerd.image.name"]
        add_bytes("manifest.json", json.dumps([{
            "Config": f"blobs/sha256/{config[0][7:]}", "RepoTags": [reference],
            "Layers": [f"blobs/sha256/{digest[7:]}" for digest, _ in digests]}]).encode())
        for digest, data in (config, manifest):
            add_bytes(f"blobs/sha256/{digest[7:]}", data)
        stored: set[str] = set()
        for layer, (digest, _) in zip(layer_paths, digests, strict=True):
            if digest not in stored:  # the same layer twice is one blob
                tar.add(layer, arcname=f"blobs/sha256/{digest[7:]}")
                stored.add(digest)


def cached_image(
    spec: ImageSpec,
    inputs: list[str | bytes],
    make_layer: Callable[[Path], None] | None = None,
    base_layers: Sequence[Path] = (),
) -> Path:
    """The image's archive from the cache, built if absent.

    The image is ``base_layers`` (existing uncompressed tars, e.g. a cached root filesystem) and then,
    if given, the layer ``make_layer`` writes. ``inputs`` must hold everything else that decides the
    image's content; with the base layers' file names (cache entries named by their own input keys)
    it keys the cache entry.
    """
    from common.progress import phase
    from images.cache import cache_root, inputs_key, lock

    if make_layer is None and not base_layers:
        raise ValueError(f"image {spec.reference} needs a layer: pass make_layer or base_layers")
    bases = [Path(layer).name for layer in base_layers]
    key = inputs_key(ARCHIVE_FORMAT, spec.reference, json.dumps(image_config(spec, "")), *bases, *inputs)
    safe = spec.reference.replace("/", "_").replace(":", "_")
    out = cache_root() / "images" / f"{safe}-{key}.tar"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    with lock(out.name):
        if out.exists():  # another process built it while we waited
            return out
        with phase(f"Building image {spec.reference}"):
            layer = out.with_name(out.name + ".layer")
            try:
                if make_layer is not None:
                    make_layer(layer)
                write_archive(spec, [*base_layers, *([layer] if make_layer is not None else [])], out)
            finally:
                layer.unlink(missing_ok=True)
    return out
