"""One redaction for everything attached to a report (claim C16: a report never holds a secret value).

Two kinds of rule:
- known values: secrets the suite made or read (registered with ``register_secret``), found in any
  form they are likely to take in evidence: as-is, URL-quoted, JSON- or HTML-escaped, base64 (also
  inside a longer base64 stream, e.g. a Kubernetes Secret's data or an encoded config);
- shapes: private key blocks, bearer/authorization tokens, passwords in URLs, and values of keys
  named like a credential (``PASSWORD=``, ``"token": ...``, ``{"name": "X_PASSWORD", "value": ...}``).

Keys that *refer* to a secret rather than hold one (``secretKeyRef``, ``secretName``, ``passwordFile``)
are kept: they are the evidence that credentials travel by reference.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = [
    "MARKER",
    "REDACTOR",
    "Redactor",
    "is_sensitive_key",
    "redact_bytes",
    "redact_obj",
    "redact_text",
    "redact_tree",
    "register_secret",
]

MARKER = "***REDACTED***"
URL_MARKER = "***"  # keeps a redacted URL readable: scheme://user:***@host
MIN_SECRET_LENGTH = 4  # shorter values would blank out ordinary words and numbers everywhere
# Files a sweep leaves alone: a pattern match inside compressed image or archive bytes would corrupt them.
BINARY_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".svgz", ".zip", ".gz", ".tgz", ".mp4", ".webm")

_SENSITIVE = r"(?:password|passwd|secret|token|api[_-]?key)"
_SENSITIVE_KEY = re.compile(_SENSITIVE, re.IGNORECASE)
# A key ending like this names where a secret is, not the secret itself.
_REFERENCE_SUFFIXES = ("name", "ref", "path", "file", "names", "refs")
# Values that carry no secret even under a credential-like key (automountServiceAccountToken: true).
_HARMLESS = frozenset({"", "true", "false", "null", "none", "~", MARKER.lower(), URL_MARKER})

# A value as it appears after ``key:``/``key=``: escaped-quoted, quoted, or a bare word on the same line.
# A bare word stops at a backslash: inside a JSON string, ``KEY=value\"`` must keep its escaped quote.
_VALUE = r"(?P<value>\\\"[^\"\\]*\\\"|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|(?![\[{])[^\s,;&'\"}\]\\]+)"
_QUOTE = r"\\?[\"']?"

_PEM = re.compile(r"(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----).*?(-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.DOTALL)
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*:)([^\s/@]+)(@)")
_AUTH_HEADER = re.compile(
    rf"(?P<key>authorization{_QUOTE}[ \t]*[:=][ \t]*{_QUOTE}(?:(?:bearer|basic|token)[ \t]+)?){_VALUE}", re.IGNORECASE
)
_BEARER = re.compile(r"(?P<key>\bbearer[ \t]+)(?P<value>[A-Za-z0-9._~+/=-]{4,})", re.IGNORECASE)
# A Kubernetes env entry: the key is "value", the credential-like word is in "name" just before it.
_ENV_ENTRY = re.compile(
    rf"(?P<key>\bname{_QUOTE}[ \t]*[:=][ \t]*{_QUOTE}[\w.-]*{_SENSITIVE}[\w.-]*{_QUOTE}[ \t]*,?[ \t]*"
    rf"(?:\r?\n[ \t]*)?{_QUOTE}value{_QUOTE}[ \t]*[:=][ \t]*){_VALUE}",
    re.IGNORECASE,
)
_KEY_VALUE = re.compile(
    rf"(?P<key>(?P<name>[\w.-]*{_SENSITIVE}[\w.-]*){_QUOTE}[ \t]*[:=][ \t]*){_VALUE}", re.IGNORECASE
)


def is_sensitive_key(key: str) -> bool:
    """A key whose value is a credential: it names one (password, secret, token, api key), not a reference."""
    return bool(_SENSITIVE_KEY.search(key)) and not key.lower().endswith(_REFERENCE_SUFFIXES)


def _replace_value(match: re.Match[str]) -> str:
    """Replace the value of a ``key: value`` match, keeping its quotes so the text stays parseable."""
    name = match.groupdict().get("name")
    value = match["value"]
    if name is not None and not is_sensitive_key(name):
        return match[0]
    quote_len = 2 if value.startswith('\\"') else 1 if value[:1] in "\"'" else 0
    if value[quote_len : len(value) - quote_len].lower() in _HARMLESS:
        return match[0]
    return match["key"] + value[:quote_len] + MARKER + value[len(value) - quote_len :]


def _base64_forms(raw: bytes) -> set[str]:
    """The base64 text of ``raw`` on its own, and the part that is the same wherever it sits in a longer
    encoded stream (one per alignment: the characters whose 6 bits all come from ``raw``)."""
    forms: set[str] = set()
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        forms.add(encode(raw).decode())
        for shift in range(3):
            encoded = encode(b"\0" * shift + raw).decode()
            forms.add(encoded[-(-8 * shift // 6) : 8 * (shift + len(raw)) // 6])
    return forms


def _encoded_forms(value: str) -> set[str]:
    forms = {value, quote(value, safe=""), json.dumps(value)[1:-1], html.escape(value)}
    forms |= _base64_forms(value.encode())
    return {form for form in forms if len(form) >= MIN_SECRET_LENGTH}


class Redactor:
    """Known secret values plus credential-shaped patterns; every report attachment goes through one."""

    def __init__(self, secrets: Iterable[str | bytes] = ()) -> None:
        self._forms: set[str] = set()
        self._known: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, value: str | bytes | None) -> None:
        """Remember a secret value (and its encoded forms); values shorter than 4 characters are ignored."""
        if value is None:
            return
        text = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)
        for candidate in {text, text.strip()}:
            if len(candidate) >= MIN_SECRET_LENGTH:
                self._forms |= _encoded_forms(candidate)
        self._known = None  # rebuilt lazily on the next redaction

    def add_secret_data(self, data: Mapping[str, str] | None) -> None:
        """Remember every value of a Kubernetes Secret's ``data`` (base64-encoded, as the API returns it)."""
        for encoded in (data or {}).values():
            self.add(base64.b64decode(encoded))

    def _known_pattern(self) -> re.Pattern[str] | None:
        if self._known is None and self._forms:
            # Longest first, so a secret's full form wins over a fragment of it.
            alternatives = sorted(self._forms, key=len, reverse=True)
            self._known = re.compile("|".join(map(re.escape, alternatives)))
        return self._known

    def redact_text(self, text: str) -> str:
        """``text`` with known values and credential-shaped substrings replaced by ``***REDACTED***``."""
        known = self._known_pattern()
        if known is not None:
            text = known.sub(MARKER, text)
        text = _PEM.sub(lambda m: m[1] + MARKER + m[2], text)
        text = _URL_PASSWORD.sub(lambda m: m[1] + (m[2] if m[2] == URL_MARKER else URL_MARKER) + m[3], text)
        for pattern in (_AUTH_HEADER, _BEARER, _ENV_ENTRY, _KEY_VALUE):
            text = pattern.sub(_replace_value, text)
        return text

    def redact_bytes(self, data: bytes) -> bytes:
        """Bytes redacted as text; bytes that are not UTF-8 pass through unchanged (surrogateescape)."""
        return self.redact_text(data.decode("utf-8", "surrogateescape")).encode("utf-8", "surrogateescape")

    def redact_obj(self, obj: Any) -> Any:
        """A redacted deep copy of a JSON-like structure (dicts, lists, tuples, sets, str, bytes, scalars).

        Under a credential-like key a string value is replaced whole; containers under it are walked, so
        ``secretKeyRef``-style structure survives. Other objects are deep-copied as they are: convert API
        objects to plain data first (e.g. ``ApiClient().sanitize_for_serialization``).
        """
        if isinstance(obj, Mapping):
            return self._redact_mapping(obj)
        if isinstance(obj, str):
            return self.redact_text(obj)
        if isinstance(obj, bytes | bytearray):
            return self.redact_bytes(bytes(obj))
        if isinstance(obj, tuple) and hasattr(obj, "_fields"):
            return type(obj)(*(self.redact_obj(item) for item in obj))
        if isinstance(obj, list | tuple | set | frozenset):
            return type(obj)(self.redact_obj(item) for item in obj)
        return copy.deepcopy(obj)

    def _redact_mapping(self, mapping: Mapping[Any, Any]) -> dict[Any, Any]:
        env_entry = isinstance(mapping.get("name"), str) and is_sensitive_key(mapping["name"])
        secret_object = mapping.get("kind") == "Secret"
        redacted: dict[Any, Any] = {}
        for key, value in mapping.items():
            sensitive = isinstance(key, str) and (is_sensitive_key(key) or (env_entry and key == "value"))
            new_key = self.redact_text(key) if isinstance(key, str) else key
            if sensitive and _holds_secret(value):
                redacted[new_key] = MARKER
            elif secret_object and key in ("data", "stringData") and isinstance(value, Mapping):
                redacted[new_key] = {item: MARKER for item in value}
            else:
                redacted[new_key] = self.redact_obj(value)
        return redacted

    def redact_tree(self, root: Path, skip_suffixes: Iterable[str] = BINARY_SUFFIXES) -> list[Path]:
        """Redact, in place, every file under ``root`` but images and archives: the last sweep of a results
        directory, which also holds what pytest captured (Allure names text attachments ``*.attach`` or
        ``*.txt``). Returns the files that changed."""
        skipped = tuple(suffix.lower() for suffix in skip_suffixes)
        changed = []
        for path in [root] if root.is_file() else sorted(root.rglob("*")):
            if path.is_file() and not path.name.lower().endswith(skipped):
                data = path.read_bytes()
                clean = self.redact_bytes(data)
                if clean != data:
                    path.write_bytes(clean)
                    changed.append(path)
        return changed


def _holds_secret(value: Any) -> bool:
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("utf-8", "replace")
    return isinstance(value, str) and value.strip().lower() not in _HARMLESS


REDACTOR = Redactor()
"""The session's redactor: the suite registers every secret it creates or reads here."""

register_secret: Callable[[str | bytes | None], None] = REDACTOR.add
redact_text: Callable[[str], str] = REDACTOR.redact_text
redact_bytes: Callable[[bytes], bytes] = REDACTOR.redact_bytes
redact_obj: Callable[[Any], Any] = REDACTOR.redact_obj
redact_tree: Callable[..., list[Path]] = REDACTOR.redact_tree
