"""The images a Dagster deployment on the local cluster runs: Dagster itself, its code locations,
PostgreSQL (run/event storage) and Redis (the Celery broker).

All are Debian bookworm root filesystems (images.rootfs) turned into OCI archives (images.oci)
without an engine or a registry, each cached under a tag derived from its inputs. Every function
returns (fully qualified image reference, archive path) ready for ``ctr images import``.

Code location images are the Dagster base layer plus one small layer of the location's code: the
runtime stores the base once, and two locations with different code get different tags (C11).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common.errors import PreflightError
from common.progress import phase
from images import oci
from images.cache import cache_root, inputs_key
from images.rootfs import RootfsRecipe, build_rootfs

DAGSTER_VERSION = "1.13.27"
# The Dagster matrix (docs/nightly.yml): the newest patch of the three newest minor lines published together; the
# README says which ran here.
TESTED_DAGSTER_VERSIONS = (DAGSTER_VERSION, "1.12.22", "1.11.16")
DAGSTER_ROOT = "/opt/dagster"
DAGSTER_HOME = f"{DAGSTER_ROOT}/dagster_home"
DAGSTER_APP = f"{DAGSTER_ROOT}/app"
POSTGRES_MAJOR = "15"
POSTGRES_DATA = "/var/lib/postgresql/data"
POSTGRES_ENTRYPOINT = "/usr/local/bin/dkc-postgres-entrypoint"
REDIS_COMMAND = ["redis-server", "--protected-mode", "no", "--bind", "0.0.0.0", "--save", "", "--appendonly", "no"]
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_DAGSTER_VERSION_RE = re.compile(r"^1\.(\d+)\.(\d+)$")
_LOCATION_NAME_RE = re.compile(r"^[a-z0-9]+(?:[_-][a-z0-9]+)*$")


# --- versions ----------------------------------------------------------------------------------


def validate_dagster_version(version: str) -> tuple[int, int]:
    """(minor, patch) of a ``1.X.Y`` Dagster release; a one-line PreflightError for anything else."""
    match = _DAGSTER_VERSION_RE.match(version)
    if not match:
        raise PreflightError(f"Dagster version {version!r} is not of the form 1.X.Y (e.g. {DAGSTER_VERSION})")
    return int(match.group(1)), int(match.group(2))


def libraries_version(dagster_version: str) -> str:
    """The integration libraries (dagster-k8s, dagster-postgres, ...) released with Dagster 1.X.Y
    are versioned 0.(X+16).Y: 1.13.27 -> 0.29.27."""
    minor, patch = validate_dagster_version(dagster_version)
    return f"0.{minor + 16}.{patch}"


def parse_index_versions(output: str) -> list[str]:
    """The versions in ``pip index versions`` output (its ``Available versions: a, b`` line)."""
    for line in output.splitlines():
        if line.strip().startswith("Available versions:"):
            return [v.strip() for v in line.split(":", 1)[1].split(",") if v.strip()]
    return []


def published_versions(package: str) -> list[str]:
    """Versions of ``package`` on the package index, asked through pip and this machine's pip
    configuration (so no index address is written here), newest first."""
    proc = subprocess.run([sys.executable, "-m", "pip", "index", "versions", package],
                          capture_output=True, text=True)
    versions = parse_index_versions(proc.stdout)
    if proc.returncode != 0 and not versions:
        if "No matching distribution" in proc.stderr:
            return []
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise PreflightError(f"cannot list {package}'s releases through pip ({tail}): check pip's index settings")
    return versions


CORE_PACKAGES = ("dagster", "dagster-webserver", "dagster-graphql")  # versioned 1.X.Y
# versioned 0.(X+16).Y
LIBRARY_PACKAGES = ("dagster-k8s", "dagster-postgres", "dagster-celery", "dagster-celery-k8s", "dagster-aws")


def _pins(version: str) -> dict[str, str]:
    libraries = libraries_version(version)
    return {**{package: version for package in CORE_PACKAGES}, **{package: libraries for package in LIBRARY_PACKAGES}}


def newest_complete_release(minor: int, published: dict[str, list[str]]) -> str | None:
    """The newest 1.``minor``.Y whose packages are all published (a core release can precede its libraries)."""
    line = [v for v in published.get("dagster", []) if _DAGSTER_VERSION_RE.match(v) and
            validate_dagster_version(v)[0] == minor]
    complete = [v for v in line if all(pin in published.get(p, []) for p, pin in _pins(v).items())]
    return max(complete, key=validate_dagster_version, default=None)


def check_dagster_version(version: str) -> None:
    """Fail in one line, before any build, unless ``version`` and every library the images install with it are
    published releases; the line names the newest release of that minor line that is complete."""
    pins = _pins(version)  # validates the format first, without the network
    with ThreadPoolExecutor(4) as pool:
        published = dict(zip(pins, pool.map(published_versions, pins), strict=True))
    for package, wanted in pins.items():
        if wanted not in published[package]:
            versions = published[package]
            newest = f"newest published: {versions[0]}" if versions else "none published"
            which = f"{package} {wanted}" + (f" (for Dagster {version})" if package not in CORE_PACKAGES else "")
            suggestion = newest_complete_release(validate_dagster_version(version)[0], published) or DAGSTER_VERSION
            raise PreflightError(f"{which} is not a published release ({newest}); "
                                 f"pick a published Dagster version, e.g. {suggestion}")


def dagster_requirements(version: str) -> list[str]:
    """What the Dagster venv holds: core, webserver, GraphQL client and the Kubernetes, Postgres, Celery and AWS
    integrations. SQLAlchemy 2.1 makes psycopg 3 the default driver while dagster-postgres
    ships psycopg2, so it is pinned below 2.1. The Kubernetes client 36.0.0 sends no credentials from inside a
    pod (Jobs are created as system:anonymous, dagster-io/dagster#33870), and dagster-k8s of the 1.13 line
    allows it: it is excluded; each line's own upper bound stays dagster-k8s's."""
    libraries = libraries_version(version)
    return [
        f"dagster=={version}",
        f"dagster-webserver=={version}",
        f"dagster-graphql=={version}",
        f"dagster-k8s=={libraries}",
        f"dagster-postgres=={libraries}",
        f"dagster-celery=={libraries}",
        f"dagster-celery-k8s=={libraries}",
        f"dagster-aws=={libraries}",  # S3ComputeLogManager: compute logs across nodes (deploy/object_store.py)
        "celery[redis]>=5,<6",
        "sqlalchemy>=2.0,<2.1",
        "kubernetes!=36.0.0",
    ]


# --- Dagster and code locations ------------------------------------------------------------------


def dagster_recipe(version: str = DAGSTER_VERSION) -> RootfsRecipe:
    return RootfsRecipe(
        name=f"dagster-{version}",
        packages=("python3", "python3-venv", "ca-certificates", "tini"),
        venv=DAGSTER_ROOT,
        requirements=tuple(dagster_requirements(version)),
        dirs=(DAGSTER_HOME, DAGSTER_APP),
    )


def dagster_spec(name: str, tag: str, version: str) -> oci.ImageSpec:
    """tini as PID 1 (reaps the processes runs and steps leave), the venv first on PATH, and no
    command of its own: Dagster's launchers pass the ``dagster ...`` arguments."""
    return oci.ImageSpec(
        name=f"{name}:{tag}",
        entrypoint=["/usr/bin/tini", "--"],
        cmd=["dagster", "--version"],
        env={"PATH": f"{DAGSTER_ROOT}/bin:{SYSTEM_PATH}", "DAGSTER_HOME": DAGSTER_HOME, "LANG": "C.UTF-8",
             "PYTHONUNBUFFERED": "1"},
        workdir=DAGSTER_APP,
        labels={"io.dagster.version": version},
    )


def _dagster_layer(version: str) -> tuple[RootfsRecipe, Path]:
    """The Dagster root filesystem layer; the PyPI check runs only when it must be built."""
    validate_dagster_version(version)
    recipe = dagster_recipe(version)
    if not recipe.is_cached():
        check_dagster_version(version)
    return recipe, build_rootfs(recipe)


def locked_versions(version: str = DAGSTER_VERSION) -> dict[str, str]:
    """``package -> version`` of what pip installed into the Dagster image of ``version`` (its requirements.lock),
    when that image is built (an empty mapping otherwise). Read from the layer once, then from a file beside it."""
    recipe = dagster_recipe(version)
    if not recipe.is_cached():
        return {}
    beside = recipe.layer.with_suffix(".lock")
    if not beside.exists():
        member = f"{DAGSTER_ROOT.strip('/')}/requirements.lock"
        with tarfile.open(recipe.layer) as layer:
            found = layer.extractfile(member)
            text = found.read().decode() if found else ""
        partial = beside.with_name(beside.name + ".partial")
        partial.write_text(text)
        partial.replace(beside)
    pins = (line.split("==", 1) for line in beside.read_text().splitlines() if "==" in line)
    return {name.strip().lower(): pinned.strip() for name, pinned in pins}


def dagster_image(version: str = DAGSTER_VERSION) -> tuple[str, Path]:
    """``local/dagster:<version>-<key>``: webserver, daemon, run and step pods, Celery workers."""
    recipe, layer = _dagster_layer(version)
    spec = dagster_spec("local/dagster", f"{version}-{recipe.key[:12]}", version)
    return spec.reference, oci.cached_image(spec, [], base_layers=[layer])


def code_files(source_dir: Path) -> list[tuple[str, Path, int]]:
    """(path relative to ``source_dir``, file, mode) of a code location's files, sorted; caches and
    hidden entries (``__pycache__``, ``*.pyc``, ``.git``) are not code."""
    found = []
    for path in sorted(source_dir.rglob("*")):
        relative = path.relative_to(source_dir)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        if path.is_file() and path.suffix != ".pyc":
            found.append((relative.as_posix(), path, 0o755 if path.stat().st_mode & 0o111 else 0o644))
    return found


def code_digest(files: Sequence[tuple[str, Path, int]]) -> str:
    """A digest of a code location's file names, modes and contents: different code, different tag."""
    digest = hashlib.sha256()
    for relative, path, mode in files:
        digest.update(f"{relative}\0{mode:o}\0".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def code_location_spec(name: str, files: Sequence[tuple[str, Path, int]], base_key: str, version: str
                       ) -> oci.ImageSpec:
    """The code location's image spec; its tag covers the Dagster base and the code."""
    tag = f"{version}-{inputs_key(base_key, code_digest(files))[:12]}"
    return dagster_spec(f"local/dagster-code-{name}", tag, version)


def code_location_image(name: str, source_dir: Path, version: str = DAGSTER_VERSION) -> tuple[str, Path]:
    """``local/dagster-code-<name>:<version>-<hash>``: the Dagster base layer plus a layer with the
    files of ``source_dir`` under /opt/dagster/app/<name>/."""
    if not _LOCATION_NAME_RE.match(name):
        raise PreflightError(f"code location name {name!r} must be lower-case letters, digits, '-' or '_'")
    files = code_files(Path(source_dir))
    if not any(relative.endswith(".py") for relative, _, _ in files):
        raise PreflightError(f"code location {name}: no Python file in {source_dir}")
    recipe, base = _dagster_layer(version)
    spec = code_location_spec(name, files, recipe.key, version)

    def code_layer(out: Path) -> None:
        oci.write_layer_from_files([(f"{DAGSTER_APP}/{name}/{rel}", path, mode) for rel, path, mode in files], out)

    return spec.reference, oci.cached_image(spec, [code_digest(files)], code_layer, base_layers=[base])


SAMPLE_CODE = Path(__file__).resolve().parent.parent / "workloads" / "locations" / "conformance"


def sample_location_image(name: str, version: str = DAGSTER_VERSION) -> tuple[str, Path]:
    """The image of the suite's sample code location ``name``: its files plus ``location.txt`` naming this copy
    (so each location's image differs). Staged in a directory of this process's own, so that workers building
    at once never read a copy another one is rewriting."""
    staging = cache_root() / "locations"
    staging.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=staging)) / name
    try:
        shutil.copytree(SAMPLE_CODE, staged, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        (staged / "location.txt").write_text(name + "\n")
        return code_location_image(name, staged, version)
    finally:
        shutil.rmtree(staged.parent, ignore_errors=True)


# --- PostgreSQL and Redis ------------------------------------------------------------------------

POSTGRES_ENTRYPOINT_SCRIPT = r"""#!/bin/sh
# PostgreSQL for a Dagster test deployment: on first start initialise $PGDATA with the superuser
# $POSTGRES_USER (default postgres) and password $POSTGRES_PASSWORD, accept password (SCRAM) logins
# from every address, create $POSTGRES_DB (default dagster); then run postgres in the foreground.
set -eu
BIN=/usr/lib/postgresql/@MAJOR@/bin
PGDATA="${PGDATA:-@DATA@}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-dagster}"
export PGDATA
if [ -z "${POSTGRES_PASSWORD:-}" ]; then
    echo "dkc-postgres: POSTGRES_PASSWORD must be set" >&2
    exit 1
fi
if [ "$(id -u)" = 0 ]; then
    SOCKETS=/run/postgresql
    mkdir -p "$PGDATA" "$SOCKETS"
    chown postgres:postgres "$PGDATA" "$SOCKETS"
    chmod 700 "$PGDATA"
    as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
else
    SOCKETS=/tmp
    as_postgres() { "$@"; }
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    if [ "$(id -u)" = 0 ]; then chown postgres "$pwfile"; fi
    as_postgres "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8
    rm -f "$pwfile"
    echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
    printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >> "$PGDATA/pg_hba.conf"
    if [ "$POSTGRES_DB" != postgres ]; then
        as_postgres "$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses='' -k $SOCKETS" -w start
        echo 'CREATE DATABASE :"db";' | as_postgres "$BIN/psql" -h "$SOCKETS" -U "$POSTGRES_USER" -d postgres \
            -v ON_ERROR_STOP=1 -v db="$POSTGRES_DB"
        as_postgres "$BIN/pg_ctl" -D "$PGDATA" -m fast -w stop
    fi
fi
if [ "$(id -u)" = 0 ]; then
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$BIN/postgres" -D "$PGDATA" -k "$SOCKETS"
fi
exec "$BIN/postgres" -D "$PGDATA" -k "$SOCKETS"
""".replace("@MAJOR@", POSTGRES_MAJOR).replace("@DATA@", POSTGRES_DATA)


def postgres_recipe() -> RootfsRecipe:
    """Debian's postgresql-15, without the cluster its package would create (the entrypoint makes one
    at first start, in the pod's data directory)."""
    return RootfsRecipe(
        name=f"postgres-{POSTGRES_MAJOR}",
        packages=(f"postgresql-{POSTGRES_MAJOR}",),
        files={"/etc/postgresql-common/createcluster.d/dkc.conf": "create_main_cluster = false\n"},
    )


def postgres_image() -> tuple[str, Path]:
    """``local/postgres:15-<key>``: the PostgreSQL layer plus a layer holding our entrypoint."""
    recipe = postgres_recipe()
    tag = f"{POSTGRES_MAJOR}-{inputs_key(recipe.key, POSTGRES_ENTRYPOINT_SCRIPT)[:12]}"
    spec = oci.ImageSpec(
        name=f"local/postgres:{tag}",
        entrypoint=[POSTGRES_ENTRYPOINT],
        env={"PATH": f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin:{SYSTEM_PATH}", "PGDATA": POSTGRES_DATA,
             "LANG": "C.UTF-8"},
        workdir="/",
    )
    base = build_rootfs(recipe)

    def entrypoint_layer(out: Path) -> None:
        oci.write_layer_from_files([(POSTGRES_ENTRYPOINT, POSTGRES_ENTRYPOINT_SCRIPT.encode(), 0o755)], out)

    return spec.reference, oci.cached_image(spec, [POSTGRES_ENTRYPOINT_SCRIPT], entrypoint_layer,
                                               base_layers=[base])


def redis_recipe() -> RootfsRecipe:
    return RootfsRecipe(name="redis", packages=("redis-server",))


def redis_image() -> tuple[str, Path]:
    """``local/redis:<key>``: Debian's redis-server in the foreground, reachable from every pod, with
    no persistence (a broker for a test run needs none)."""
    recipe = redis_recipe()
    spec = oci.ImageSpec(name=f"local/redis:{recipe.key[:12]}", entrypoint=REDIS_COMMAND,
                            env={"PATH": SYSTEM_PATH}, workdir="/")
    return spec.reference, oci.cached_image(spec, [], base_layers=[build_rootfs(recipe)])


def main(argv: Sequence[str] | None = None) -> int:
    """Build every image (and one code location per ``name=dir`` argument) and print their references."""
    args = list(sys.argv[1:] if argv is None else argv)
    with phase("Building the Dagster deployment's images"):
        built = [dagster_image(), postgres_image(), redis_image()]
        for arg in args:
            name, _, directory = arg.partition("=")
            built.append(code_location_image(name, Path(directory)))
    for reference, archive in built:
        print(f"{reference}\t{archive}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
