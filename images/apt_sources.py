"""The Debian mirror, read from this machine's own apt sources (one-line and deb822): the project never names one."""


import re
from collections.abc import Iterator, Sequence
from pathlib import Path

from common.errors import PreflightError

SUITE = "bookworm"
SOURCES_LIST = Path("/etc/apt/sources.list")
SOURCES_DIR = Path("/etc/apt/sources.list.d")
_SUPPORTED_SCHEMES = ("http://", "https://", "file:/")


# --- the mirror --------------------------------------------------------------------------------


def _one_line_entries(text: str) -> Iterator[tuple[str, str]]:
    """(uri, suite) of each ``deb`` line of a sources.list file."""
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line.startswith("deb "):
            continue
        line = re.sub(r"\[[^\]]*\]", " ", line)  # [arch=amd64 signed-by=...]
        words = line.split()
        if len(words) >= 3:
            yield words[1], words[2]


def _deb822_entries(text: str) -> Iterator[tuple[str, str]]:
    """(uri, suite) of each enabled ``Types: deb`` stanza of a deb822 .sources file."""
    stanzas: list[dict[str, str]] = [{}]
    last = ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#"):
            continue
        if not raw.strip():
            if stanzas[-1]:
                stanzas.append({})
            continue
        if raw[0] in " \t" and last:
            stanzas[-1][last] += " " + raw.strip()
        elif ":" in raw:
            last, value = (part.strip() for part in raw.split(":", 1))
            last = last.lower()
            stanzas[-1][last] = value
    for stanza in stanzas:
        if "deb" not in stanza.get("types", "").split() or stanza.get("enabled", "yes").lower() == "no":
            continue
        for uri in stanza.get("uris", "").split():
            for suite in stanza.get("suites", "").split():
                yield uri, suite


def parse_mirror(one_line_texts: Sequence[str], deb822_texts: Sequence[str], suite: str = SUITE) -> str | None:
    """The Debian mirror to debootstrap ``suite`` from, given the texts of the apt sources files.

    An entry for ``suite`` itself wins; otherwise any entry for a release's main archive (a suite
    without ``-updates``/``-security``), since every Debian mirror carries every release.
    """
    entries = [e for text in one_line_texts for e in _one_line_entries(text)]
    entries += [e for text in deb822_texts for e in _deb822_entries(text)]
    usable = [(uri, s) for uri, s in entries if uri.startswith(_SUPPORTED_SCHEMES)]
    for uri, entry_suite in usable:
        if entry_suite == suite:
            return uri.rstrip("/")
    for uri, entry_suite in usable:
        if "-" not in entry_suite and "/" not in entry_suite and "security" not in uri:
            return uri.rstrip("/")
    return None


def host_mirror(suite: str = SUITE) -> str:
    """The mirror this machine's apt uses, read from its sources files at run time."""
    one_line, deb822 = [], []
    try:
        if SOURCES_LIST.exists():
            one_line.append(SOURCES_LIST.read_text())
        if SOURCES_DIR.is_dir():
            one_line += [p.read_text() for p in sorted(SOURCES_DIR.glob("*.list"))]
            deb822 += [p.read_text() for p in sorted(SOURCES_DIR.glob("*.sources"))]
    except OSError as exc:
        raise PreflightError(
            f"cannot read apt's sources ({exc}); images are built from the machine's Debian mirror") from exc
    mirror = parse_mirror(one_line, deb822, suite)
    if mirror is None:
        raise PreflightError(f"no Debian mirror for {suite} in {SOURCES_LIST} or {SOURCES_DIR}/*.sources: "
                             "configure apt with a Debian mirror (http or https) and retry")
    return mirror


