"""The smoke image: Debian's static busybox, enough to resolve names and fetch over HTTPS."""

from __future__ import annotations

import tempfile
from pathlib import Path

from images import debian, oci

NAME = "local/dkc-smoke"
APPLETS = ("sh", "nslookup", "wget", "cat", "echo", "sleep", "hostname", "env", "nc", "ls", "grep")


def smoke_image() -> tuple[str, Path]:
    """(image reference, archive) of the smoke image, built once per busybox-static package version."""
    deb = debian.download_deb("busybox-static")
    tag = debian.sha256(deb)[:12]
    spec = oci.ImageSpec(name=f"{NAME}:{tag}", entrypoint=["/bin/sh"], env={"PATH": "/bin"})

    def layer(out: Path) -> None:
        with tempfile.TemporaryDirectory() as root:
            debian.extract(deb, Path(root))
            busybox = Path(root) / "bin" / "busybox"
            files: list[tuple[str, Path | bytes, int]] = [
                ("/bin/busybox", busybox, 0o755),
                ("/etc/passwd", b"root:x:0:0:root:/:/bin/sh\n", 0o644),
            ]
            oci.write_layer_from_files(files, out, links=[(f"/bin/{a}", "busybox") for a in APPLETS])

    return spec.reference, oci.cached_image(spec, [deb.name], layer)
