"""What a test shows in its Allure result: titles and labels by claim, steps, and attachments.

Every attachment passes through the session's redactor before it is handed to Allure, in the process
that knows the secret values (with pytest-xdist: the worker that deployed Dagster). Without the
allure-pytest plugin active (e.g. ``./dkc up``), steps and attachments do nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import allure
import yaml

from reports.claims import CLAIMS
from reports.plugin import claims_of as claims_from_markers
from reports.redact import REDACTOR

__all__ = ["AllureRecorder", "attach_file", "attach_json", "attach_png", "attach_text", "attach_yaml", "claims_of",
           "label_test", "step", "title_of", "title_test"]

step = allure.step

DESIGN_CARD = Path(__file__).resolve().parent.parent.parent / "shared" / "DESIGN.md"
DESIGN_CLAIMS_ANCHOR = "the-claims-under-test-each-is-a-test-each-has-a-marker"
AREAS = (("ha", "HA and chaos"), ("conformance", "Conformance"), ("smoke", "Cluster"), ("lifecycle", "Cluster"))


def attach_text(name: str, text: str) -> None:
    allure.attach(REDACTOR.redact_text(text), name=name, attachment_type=allure.attachment_type.TEXT)


def attach_json(name: str, data: Any) -> None:
    clean = REDACTOR.redact_obj(json.loads(json.dumps(data, default=str)))
    allure.attach(json.dumps(clean, indent=2), name=name, attachment_type=allure.attachment_type.JSON)


def attach_yaml(name: str, documents: Iterable[Any]) -> None:
    clean = [REDACTOR.redact_obj(json.loads(json.dumps(doc, default=str))) for doc in documents]
    allure.attach(yaml.safe_dump_all(clean, sort_keys=False), name=name, attachment_type=allure.attachment_type.YAML)


def attach_png(name: str, png: bytes) -> None:
    """A picture; whatever text it shows must have been redacted before it was drawn."""
    allure.attach(png, name=name, attachment_type=allure.attachment_type.PNG)


def attach_file(name: str, path: Path) -> None:
    """A text file (e.g. a chaos journal), redacted; JSON files keep their type."""
    text = REDACTOR.redact_text(path.read_text(encoding="utf-8", errors="replace"))
    kind = allure.attachment_type.JSON if path.suffix == ".json" else allure.attachment_type.TEXT
    allure.attach(text, name=name, attachment_type=kind)


class AllureRecorder:
    """The steps and attachments of the rooms below (common.record) as Allure steps and redacted attachments."""

    def step(self, title: str) -> Any:
        return allure.step(title)

    def attach_text(self, name: str, text: str) -> None:
        attach_text(name, text)

    def attach_json(self, name: str, data: Any) -> None:
        attach_json(name, data)

    def attach_file(self, name: str, path: Path) -> None:
        attach_file(name, path)


def claims_of(markers: Iterable[str]) -> list[str]:
    """``["C9", "C10"]`` from marker names, as the matrix reads them."""
    return list(claims_from_markers(markers))


def area_of(markers: Iterable[str]) -> str:
    names = set(markers)
    return next((area for marker, area in AREAS if marker in names), "Other")


def title_of(function_name: str, claims: list[str], parameters: Mapping[str, Any]) -> str:
    """``C3 · a run in flight finishes while a control plane component is killed — webserver [k8s-job]``."""
    words = _words(function_name)
    combination = parameters.get("dagster")
    others = [_param_text(value) for key, value in parameters.items() if key != "dagster"]
    title = f"{' '.join(claims)} · {words}" if claims else words
    if others:
        title += " — " + ", ".join(others)
    return f"{title} [{combination}]" if combination else title


def _words(function_name: str) -> str:
    return function_name.removeprefix("test_").replace("_", " ")


def _param_text(value: Any) -> str:
    return str(getattr(value, "name", value))


def design_link() -> str:
    """Where the claims are written down: the design card next to the checkout, or ``DKC_DESIGN_URL``."""
    base = os.environ.get("DKC_DESIGN_URL") or DESIGN_CARD.as_uri()
    return base if "#" in base else f"{base}#{DESIGN_CLAIMS_ANCHOR}"


def label_test(markers: Iterable[str], function_name: str, parameters: Mapping[str, Any]) -> None:
    """File the running test as epic/feature/story = area / claim / combination, linked to the design card.

    Call it while the test is set up (labels then also reach tests skipped in setup)."""
    markers = list(markers)
    claims = claims_of(markers)
    allure.dynamic.epic(area_of(markers))
    for claim in claims:
        allure.dynamic.feature(f"{claim} · {CLAIMS[claim]}")
        allure.dynamic.link(design_link(), name=f"{claim} in the design card")
    if not claims:
        allure.dynamic.feature(_words(function_name))
    if parameters.get("dagster"):
        allure.dynamic.story(str(parameters["dagster"]))


def title_test(markers: Iterable[str], function_name: str, parameters: Mapping[str, Any]) -> None:
    """Title the running test by its claim. Call it when the test body starts: allure-pytest sets the name
    from the pytest node id at the end of setup."""
    allure.dynamic.title(title_of(function_name, claims_of(markers), parameters))
