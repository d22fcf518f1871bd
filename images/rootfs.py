"""Debian root filesystems built without a container engine: debootstrap, apt and pip in a chroot.

Images for Dagster, PostgreSQL and Redis start from ``debootstrap --variant=minbase bookworm``
(cached once, shared by every recipe), get Debian packages installed with apt-get inside a chroot
and, for Dagster, a virtualenv filled by pip. The result is cached as one uncompressed layer tar
named by a digest of the recipe, so the second request for the same recipe costs nothing.

The Debian mirror is read from this machine's own apt sources at run time and pip inherits this
machine's pip configuration (index, CA bundle, find-links): the project never names a mirror.
The steps themselves are in images.chroot, the mirror in images.apt_sources.
"""



import json
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import BuildError
from common.progress import phase, say
from images.apt_sources import SUITE, host_mirror
from images.cache import cache_root, inputs_key, lock
from images.chroot import apt_install, debootstrap, discard, inside, pip_install, preflight, remove_tree, scrub
from images.oci import write_layer_from_dir

# Bump when the way a root filesystem is built changes, so old cache entries are not reused.
RECIPE_REVISION = "2"
# Installed before any package: dpkg leaves out documentation, manuals and translations (keeping
# the licences), about 25 MB of the PostgreSQL image. It stays in the image for later installs.
DPKG_SLIM = """\
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
path-exclude=/usr/share/lintian/*
"""


# --- recipes and the cache ---------------------------------------------------------------------


def _layer_path(kind: str, key: str) -> Path:
    return cache_root() / "rootfs" / f"{kind}-{key}.tar"


def _write_layer(root: Path, out: Path) -> None:
    """Tar ``root`` to ``out`` through a .partial file renamed at the end: never a half cache entry."""
    partial = out.with_name(out.name + ".partial")
    try:
        write_layer_from_dir(root, partial, keep_mtime=True)
        partial.rename(out)
    finally:
        partial.unlink(missing_ok=True)


def _extract(layer: Path, into: Path) -> None:
    into.mkdir(parents=True)
    proc = subprocess.run(["tar", "-xpf", str(layer), "-C", str(into), "--numeric-owner"],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"cannot unpack {layer}: {proc.stderr.strip()[-200:]}")


@contextmanager
def _building(out: Path) -> Iterator[tuple[Path, Path]]:
    """A fresh work tree and an empty log for the layer ``out``; after the body, the tree scrubbed and written to
    ``out``. The tree is discarded in every case."""
    work = cache_root() / "build" / out.stem
    log = cache_root() / "logs" / f"{out.stem}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    remove_tree(work)
    try:
        yield work, log
        scrub(work)
        say(f"  writing layer {out.name}")
        _write_layer(work, out)
    finally:
        discard(work)


def minbase_layer() -> Path:
    """``debootstrap --variant=minbase`` of SUITE, once: every recipe unpacks this instead of
    bootstrapping again (about 40 s saved per image)."""
    key = inputs_key(RECIPE_REVISION, SUITE, "minbase", os.uname().machine)
    out = _layer_path(f"debian-{SUITE}-minbase", key)
    if out.exists():
        return out
    preflight()
    mirror = host_mirror()
    out.parent.mkdir(parents=True, exist_ok=True)
    with lock(out.name), phase(f"Bootstrapping Debian {SUITE} minbase (cached in {out.parent}; once)"):
        if out.exists():
            return out
        with _building(out) as (work, log):
            debootstrap(work, mirror, log)
    return out


@dataclass(frozen=True)
class RootfsRecipe:
    """Everything that decides a root filesystem's content, and so its cache key.

    ``files`` (path -> content) are written before packages are installed, e.g. configuration a
    package's postinst reads; ``dirs`` are created after everything else.
    """

    name: str
    packages: tuple[str, ...] = ()
    venv: str = ""
    requirements: tuple[str, ...] = ()
    files: Mapping[str, str] = field(default_factory=dict)
    dirs: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return inputs_key(
            RECIPE_REVISION, SUITE, self.name, json.dumps(sorted(self.packages)), self.venv,
            json.dumps(list(self.requirements)), json.dumps(dict(self.files), sort_keys=True),
            json.dumps(sorted(self.dirs)),
        )

    @property
    def layer(self) -> Path:
        return _layer_path(self.name, self.key)

    def is_cached(self) -> bool:
        return self.layer.exists()


def build_rootfs(recipe: RootfsRecipe) -> Path:
    """The recipe's root filesystem as an uncompressed layer tar, from the cache or built now."""
    out = recipe.layer
    if out.exists():
        return out
    preflight()
    base = minbase_layer()
    with lock(out.name), phase(f"Building root filesystem {recipe.name} (cached in {out.parent})"):
        if out.exists():
            return out
        with _building(out) as (work, log):
            say(f"  unpacking {base.name}")
            _extract(base, work)
            inside(work, "/etc/dpkg/dpkg.cfg.d/dkc-slim").write_text(DPKG_SLIM)
            for path, content in recipe.files.items():
                (work / path.strip("/")).parent.mkdir(parents=True, exist_ok=True)
                inside(work, path).write_text(content)
            apt_install(work, recipe.packages, log)
            if recipe.venv:
                pip_install(work, recipe.venv, recipe.requirements, log)
            for directory in recipe.dirs:
                (work / directory.strip("/")).mkdir(parents=True, exist_ok=True)
    size = out.stat().st_size / 1e6
    say(f"  {recipe.name}: {size:.0f} MB layer")
    return out


def debian_rootfs(
    name: str,
    packages: Sequence[str],
    venv: str = "",
    requirements: Sequence[str] = (),
    files: Mapping[str, str] | None = None,
    dirs: Sequence[str] = (),
) -> Path:
    """A cached Debian SUITE root filesystem (minbase + ``packages`` + optional venv with
    ``requirements``) as an uncompressed layer tar; see RootfsRecipe for the arguments."""
    recipe = RootfsRecipe(name=name, packages=tuple(packages), venv=venv, requirements=tuple(requirements),
                          files=dict(files or {}), dirs=tuple(dirs))
    return build_rootfs(recipe)
