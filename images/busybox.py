"""The image for the official Dagster chart's busybox init containers (`until nslookup <location>; ...`).

The chart pins docker.io/busybox:1.28, which cannot be pulled here; Debian's busybox-static is newer, and since
busybox 1.29 `nslookup NAME` asks every search domain of resolv.conf and exits 1 when any of them has no such name,
so in a pod (`<ns>.svc.cluster.local svc.cluster.local cluster.local`) the chart's wait never ends although the
Service resolves. This image's `nslookup` answers as busybox 1.28 did: success at the first search domain that
knows the name (each asked as an absolute name, so no other domain is tried). Its shell is Debian's bash-static:
busybox's own shell runs its nslookup applet in preference to any /bin/nslookup.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from images import debian, oci
from images.cache import inputs_key

__all__ = ["NSLOOKUP", "chart_busybox_image"]

NAME = "local/dkc-chart-busybox"
APPLETS = ("sed", "sleep", "cat", "wget")
NSLOOKUP = """#!/bin/sh
# nslookup NAME the way busybox 1.28 answered it: the first search domain that resolves NAME wins.
case "$1" in
    *.) exec busybox nslookup "$1" ;;
esac
for domain in $(sed -n 's/^search //p' /etc/resolv.conf); do
    if busybox nslookup "$1.$domain." >/dev/null 2>&1; then
        exec busybox nslookup "$1.$domain."
    fi
done
exec busybox nslookup "$1."
"""


def chart_busybox_image() -> tuple[str, Path]:
    """(image reference, archive), built once per busybox-static package version and nslookup script."""
    deb, bash = debian.download_deb("busybox-static"), debian.download_deb("bash-static")
    tag = inputs_key(debian.sha256(deb), debian.sha256(bash), NSLOOKUP)[:12]
    spec = oci.ImageSpec(name=f"{NAME}:{tag}", entrypoint=["/bin/sh"], env={"PATH": "/bin"})

    def layer(out: Path) -> None:
        with tempfile.TemporaryDirectory() as root:
            debian.extract(deb, Path(root))
            debian.extract(bash, Path(root))
            files: list[tuple[str, Path | bytes, int]] = [
                ("/bin/busybox", Path(root) / "bin" / "busybox", 0o755),
                ("/bin/bash-static", Path(root) / "bin" / "bash-static", 0o755),
                ("/bin/nslookup", NSLOOKUP.encode(), 0o755),
            ]
            links = [("/bin/sh", "bash-static"), *((f"/bin/{a}", "busybox") for a in APPLETS)]
            oci.write_layer_from_files(files, out, links=links)

    return spec.reference, oci.cached_image(spec, [deb.name, bash.name, NSLOOKUP], layer)
