"""The OCI runtime shim that lets Docker start privileged containers (kind nodes) where the machine withholds
capabilities: what it removes from a spec, and which bundle it edits."""

from __future__ import annotations

from pathlib import Path

from clusters.kind.runc_shim import bounding_set, bundle_of, patch_spec, withheld

# Every capability but CAP_SYS_RESOURCE (bit 24), as /proc/self/status shows it on such a machine.
STATUS = "Name:\tpython\nCapBnd:\t000001fffeffffff\n"


def test_the_withheld_capabilities_come_from_the_bounding_set() -> None:
    assert withheld(STATUS) == {"CAP_SYS_RESOURCE"}
    assert "CAP_SYS_ADMIN" in bounding_set(STATUS)
    assert withheld("CapBnd:\t000001ffffffffff\n") == set()


def test_a_privileged_spec_loses_only_what_the_machine_lacks() -> None:
    every = ["CAP_SYS_ADMIN", "CAP_SYS_RESOURCE", "CAP_NET_ADMIN"]
    spec = {"process": {"capabilities": {name: list(every) for name in ("bounding", "effective", "permitted")},
                        "oomScoreAdj": -999}}
    assert patch_spec(spec, {"CAP_SYS_RESOURCE"})
    assert spec["process"]["capabilities"]["bounding"] == ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]
    assert spec["process"]["oomScoreAdj"] == 0
    assert not patch_spec(spec, {"CAP_SYS_RESOURCE"})  # nothing left to change


def test_a_spec_that_asks_nothing_withheld_is_left_alone() -> None:
    spec = {"process": {"capabilities": {"bounding": ["CAP_CHOWN"]}, "oomScoreAdj": 0}}
    assert not patch_spec(spec, {"CAP_SYS_RESOURCE"})


def test_the_bundle_is_read_from_create_and_run_calls_only() -> None:
    argv = ["--root", "/run/docker/runtime-runc/moby", "--log", "x.log", "create", "--bundle", "/b/1", "--pid-file",
            "p", "id1"]
    assert bundle_of(argv) == Path("/b/1")
    assert bundle_of(["run", "--bundle=/b/2", "id2"]) == Path("/b/2")
    assert bundle_of(["--root", "/r", "start", "id1"]) is None
    assert bundle_of(["--root", "/r", "create", "id3"]) == Path.cwd()
