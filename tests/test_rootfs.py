"""Self-tests: the mirror comes from apt's own sources, pip's settings reach the chroot, and a root
filesystem's cache key follows its recipe. Nothing here needs root or the network."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import BuildError
from images import apt_sources, chroot, rootfs

ONE_LINE = """\
# deb cdrom:[Debian GNU/Linux 12]/ bookworm main
deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.example/debian/ bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
"""

DEB822 = """\
Types: deb
# a comment inside a stanza
URIs: http://one.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main
"""


def test_mirror_from_a_one_line_sources_list() -> None:
    assert apt_sources.parse_mirror([ONE_LINE], []) == "http://mirror.example/debian"


def test_mirror_from_deb822_sources() -> None:
    assert apt_sources.parse_mirror([], [DEB822]) == "http://one.example/debian"


def test_deb822_disabled_stanzas_and_source_only_types_are_skipped() -> None:
    text = ("Types: deb\nURIs: http://off.example/debian\nSuites: bookworm\nEnabled: no\n\n"
            "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n"
            "Types: deb deb-src\nURIs:\n http://multi.example/debian\nSuites: bookworm\n")
    assert apt_sources.parse_mirror([], [text]) == "http://multi.example/debian"


def test_mirror_of_another_release_serves_bookworm_too_but_security_and_cdrom_do_not() -> None:
    assert apt_sources.parse_mirror(["deb https://other.example/debian trixie main\n"], []) == \
        "https://other.example/debian"
    only_security = "deb http://security.example/debian-security bookworm-security main\n"
    assert apt_sources.parse_mirror([only_security, "deb cdrom:/x bookworm main\n"], []) is None


def test_no_mirror_is_a_one_line_preflight_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sources.list").write_text("# nothing\n")
    monkeypatch.setattr(apt_sources, "SOURCES_LIST", tmp_path / "sources.list")
    monkeypatch.setattr(apt_sources, "SOURCES_DIR", tmp_path / "absent")
    with pytest.raises(chroot.PreflightError, match=r"^no Debian mirror for bookworm in .*retry$"):
        apt_sources.host_mirror()


def test_pip_settings_come_from_config_files_and_the_environment_wins() -> None:
    config = ("global.cert='/etc/ssl/a.crt'\nglobal.index-url='https://index.example/simple'\n"
              ":env:.find-links='/opt/wheels'\n")
    env = chroot.pip_environment(config, {"PIP_CERT": "/etc/ssl/b.crt", "PIP_FIND_LINKS": "/opt/wheels", "HOME": "/"})
    assert env == {"PIP_CERT": "/etc/ssl/b.crt", "PIP_INDEX_URL": "https://index.example/simple",
                   "PIP_FIND_LINKS": "/opt/wheels"}


def test_pip_settings_are_rewritten_for_the_chroot(tmp_path: Path) -> None:
    root, wheels, cert = tmp_path / "root", tmp_path / "wheels", tmp_path / "ca.crt"
    root.mkdir()
    wheels.mkdir()
    cert.write_text("CA")
    host = {"PIP_CERT": str(cert), "PIP_FIND_LINKS": f"{wheels} https://links.example/", "PIP_LOG": "/var/log/x"}
    env, binds = chroot.chroot_pip_environment(root, host)
    assert env["PIP_CERT"] == f"{chroot.PIP_STAGING}/pip_cert"
    assert (root / chroot.PIP_STAGING.strip("/") / "pip_cert").read_text() == "CA"
    assert binds == {wheels: f"{chroot.PIP_STAGING}/find-links-0"}
    assert env["PIP_FIND_LINKS"] == f"{chroot.PIP_STAGING}/find-links-0 https://links.example/"
    assert "PIP_LOG" not in env and env["PIP_NO_CACHE_DIR"] == "1"


def test_recipe_key_follows_every_input() -> None:
    base = rootfs.RootfsRecipe(name="x", packages=("a", "b"), venv="/opt/v", requirements=("r==1",))
    assert base.key == rootfs.RootfsRecipe(name="x", packages=("b", "a"), venv="/opt/v", requirements=("r==1",)).key
    variants = [
        rootfs.RootfsRecipe(name="y", packages=("a", "b"), venv="/opt/v", requirements=("r==1",)),
        rootfs.RootfsRecipe(name="x", packages=("a", "c"), venv="/opt/v", requirements=("r==1",)),
        rootfs.RootfsRecipe(name="x", packages=("a", "b"), venv="/opt/w", requirements=("r==1",)),
        rootfs.RootfsRecipe(name="x", packages=("a", "b"), venv="/opt/v", requirements=("r==2",)),
        rootfs.RootfsRecipe(name="x", packages=("a", "b"), venv="/opt/v", requirements=("r==1",), dirs=("/d",)),
        rootfs.RootfsRecipe(name="x", packages=("a", "b"), venv="/opt/v", requirements=("r==1",),
                            files={"/etc/f": "1"}),
    ]
    keys = {base.key, *(recipe.key for recipe in variants)}
    assert len(keys) == 1 + len(variants)


def test_recipe_revision_is_part_of_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = rootfs.RootfsRecipe(name="x", packages=("a",))
    before = recipe.key
    monkeypatch.setattr(rootfs, "RECIPE_REVISION", "next")
    assert recipe.key != before


def test_layer_path_is_in_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DKC_CACHE_DIR", str(tmp_path))
    recipe = rootfs.RootfsRecipe(name="redis", packages=("redis-server",))
    assert recipe.layer == tmp_path / "rootfs" / f"redis-{recipe.key}.tar"
    assert not recipe.is_cached()


def test_writes_never_follow_a_symlink_out_of_the_build_tree(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "resolv.conf").symlink_to("/etc/resolv.conf")
    assert chroot.inside(root, "/etc/resolv.conf") == root / "etc" / "resolv.conf"
    assert not (root / "etc" / "resolv.conf").exists()  # the link itself was removed
    (root / "var").symlink_to(tmp_path)
    with pytest.raises(BuildError, match="leads out of the build tree"):
        chroot.inside(root, "/var/x")


def test_scrub_empties_caches_and_forgets_the_build_host(tmp_path: Path) -> None:
    for relative in ("var/cache/apt/archives/a.deb", "var/lib/apt/lists/l_Packages", "tmp/x", "root/.cache/pip/y"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "resolv.conf").write_text("nameserver 10.0.0.1\n")
    chroot.scrub(tmp_path)
    assert [p for p in (tmp_path / "var").rglob("*") if p.is_file()] == []
    assert list((tmp_path / "tmp").iterdir()) == []
    assert (tmp_path / "var/lib/apt/lists/partial").is_dir()
    assert (tmp_path / "etc" / "resolv.conf").read_text() == ""


def test_a_failed_step_names_itself_its_last_line_and_its_log(tmp_path: Path) -> None:
    log = tmp_path / "build.log"
    with pytest.raises(BuildError, match=r"^demo step failed \(exit 3\): boom; full log: .*build\.log$"):
        chroot.run_logged(["sh", "-c", "echo working; echo boom; exit 3"], log, "demo step")
    assert "working" in log.read_text()


def test_mounts_under_a_plain_directory_are_none(tmp_path: Path) -> None:
    assert chroot.mounts_under(tmp_path) == []


def test_not_root_and_missing_debootstrap_are_one_line_preflight_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chroot.os, "geteuid", lambda: 1000)
    with pytest.raises(chroot.PreflightError, match=r"^building Debian root filesystems needs root .*: run as root$"):
        chroot.preflight()
    monkeypatch.setattr(chroot.os, "geteuid", lambda: 0)
    monkeypatch.setattr(chroot.shutil, "which", lambda tool: None if tool == "debootstrap" else "/usr/bin/" + tool)
    with pytest.raises(chroot.PreflightError, match=r"^debootstrap is not installed: apt-get install debootstrap"):
        chroot.preflight()
