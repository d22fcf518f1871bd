"""Look at the HTML report as a person would: headless Chromium screenshots of the overview and of one test.

    .venv/bin/python -m reports.screenshots [--report reports/out/allure-report/index.html] [--claim C3]
                                            [--out reports/out/screenshots]

The test shown is the first of the claim's tests (a chaos claim by default) that has a pod timeline
attached, so the picture shows the claim, its steps and the timeline; the conformance matrix entry is
shot too. Needs Debian's ``chromium``.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from clusters.errors import ClusterError

REPORT = Path(__file__).resolve().parent / "out" / "allure-report" / "index.html"
TIMELINE_ATTACHMENT = "pod timeline"
MATRIX_FULL_NAME = "dkc#conformance-matrix"  # the summary entry reports.allure_files writes
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# The single-file report embeds each data file as base64 in a call d('<path>', '<base64>').
_EMBEDDED = re.compile(r"d\('data/test-cases/(?P<uid>[0-9a-f]+)\.json','(?P<data>[A-Za-z0-9+/=]+)'\)")


def browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if not found:
        raise ClusterError("headless Chromium is not installed: apt-get install chromium")
    return found


def test_cases(index: Path) -> list[dict[str, Any]]:
    """The test cases a single-file Allure report carries."""
    return [json.loads(base64.b64decode(m["data"])) for m in _EMBEDDED.finditer(index.read_text(encoding="utf-8"))]


def _attachments(case: dict[str, Any]) -> list[str]:
    names: list[str] = []

    def walk(stage: dict[str, Any]) -> None:
        names.extend(a.get("name", "") for a in stage.get("attachments", []))
        for child in stage.get("steps", []):
            walk(child)

    for stage in [case.get("testStage", {}), *case.get("beforeStages", []), *case.get("afterStages", [])]:
        walk(stage)
    return names


def _claims_in_title(title: str) -> list[str]:
    """``["C10", "C11"]`` from a title ``C10 C11 · ...`` (see reports.evidence.title_of)."""
    head, separator, _ = title.partition(" · ")
    return head.split() if separator else []


def pick(cases: list[dict[str, Any]], claim: str) -> dict[str, Any]:
    """The first test of ``claim`` (by title) with a pod timeline; failing tests first, they matter most."""
    ours = [case for case in cases if claim in _claims_in_title(case.get("name", ""))]
    with_timeline = [case for case in ours if TIMELINE_ATTACHMENT in _attachments(case)]
    if not with_timeline:
        raise ClusterError(f"the report has no test of {claim} with a pod timeline ({len(ours)} test(s) of {claim})")
    return sorted(with_timeline, key=lambda case: case.get("status") == "passed")[0]


def screenshot(page: str, out: Path, width: int = 1440, height: int = 2000) -> Path:
    """Render ``page`` in headless Chromium (letting its scripts run) and save a PNG."""
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--allow-file-access-from-files", f"--window-size={width},{height}", "--virtual-time-budget=15000",
               f"--screenshot={out}", page]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    if done.returncode != 0 or not out.exists():
        raise ClusterError(f"Chromium could not screenshot {page}: {done.stderr.strip()[-300:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, default=REPORT, help="the single-file Allure report")
    parser.add_argument("--claim", default="C3", help="show a test of this claim (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPORT.parent.parent / "screenshots")
    args = parser.parse_args(argv)
    try:
        if not args.report.exists():
            raise ClusterError(f"no report at {args.report}: run ./dkc run first")
        url = args.report.resolve().as_uri()
        cases = test_cases(args.report)
        case = pick(cases, args.claim)
        shots = [screenshot(url, args.out / "overview.png", height=1100),
                 screenshot(f"{url}#testresult/{case['uid']}", args.out / f"{args.claim.lower()}-test.png")]
        matrix = next((c for c in cases if c.get("fullName") == MATRIX_FULL_NAME), None)
        if matrix:
            shots.append(screenshot(f"{url}#testresult/{matrix['uid']}", args.out / "matrix.png", height=1300))
    except ClusterError as exc:
        print(f"dkc: error: {exc}", file=sys.stderr)
        return 2
    print(f"screenshots of {args.report}: " + ", ".join(str(shot) for shot in shots) + f" (test: {case['name']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
