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
import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import requests
import websocket

from common.errors import DkcError
from common.waits import Observation, WaitTimeout, wait_for

REPORT = Path(__file__).resolve().parent / "out" / "allure-report" / "index.html"
TIMELINE_ATTACHMENT = "pod timeline"
MATRIX_FULL_NAME = "dkc#conformance-matrix"  # the summary entry reports.allure_files writes
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
# The single-file report embeds each data file as base64 in a call d('<path>', '<base64>').
_EMBEDDED = re.compile(r"d\('data/test-cases/(?P<uid>[0-9a-f]+)\.json','(?P<data>[A-Za-z0-9+/=]+)'\)")


class ScreenshotError(DkcError):
    """The report could not be opened or pictured."""


def browser() -> str:
    found = next((path for name in BROWSERS if (path := shutil.which(name))), None)
    if not found:
        raise ScreenshotError("headless Chromium is not installed: apt-get install chromium")
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
        raise ScreenshotError(f"the report has no test of {claim} with a pod timeline ({len(ours)} test(s) of {claim})")
    return sorted(with_timeline, key=lambda case: case.get("status") == "passed")[0]


class Browser:
    """Headless Chromium driven over the DevTools protocol on loopback: open a page, click, take a picture."""

    def __init__(self, width: int = 1440, height: int = 2000) -> None:
        self.profile = Path(tempfile.mkdtemp(prefix="dkc-chromium-"))
        self.process = subprocess.Popen(
            [browser(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
             f"--window-size={width},{height}", "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--user-data-dir={self.profile}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port = wait_for("Chromium's DevTools port", self._port, 60, 0.2)
        pages = requests.get(f"http://127.0.0.1:{port}/json", timeout=10).json()
        target = next(page for page in pages if page.get("type") == "page")
        self.socket = websocket.create_connection(target["webSocketDebuggerUrl"], timeout=60)
        self.calls = 0

    def _port(self) -> Observation[int]:
        if self.process.poll() is not None:
            raise ScreenshotError(f"Chromium exited with {self.process.returncode} before it listened")
        active = self.profile / "DevToolsActivePort"
        lines = active.read_text().splitlines() if active.exists() else []
        return Observation(bool(lines), "no DevToolsActivePort yet", int(lines[0]) if lines else None)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls += 1
        self.socket.send(json.dumps({"id": self.calls, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries our id
            message = json.loads(self.socket.recv())
            if message.get("id") == self.calls:
                if "error" in message:
                    raise ScreenshotError(f"Chromium {method}: {message['error'].get('message')}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def open(self, url: str, shows: str) -> None:
        """Load ``url`` and wait until the page's text includes ``shows`` (the report renders with scripts)."""
        self.call("Page.navigate", url=url)
        wait_for(f"the page to show {shows!r}", lambda: Observation(
            bool(self.evaluate(f"document.body && document.body.innerText.includes({json.dumps(shows)})")),
            "still rendering"), 60, 0.5)

    def click_text(self, text: str, then_shows: str) -> None:
        """Click the innermost element whose text is ``text`` and wait until ``then_shows`` (a JS condition)."""
        clicked = self.evaluate(f"""(() => {{
            const hit = [...document.querySelectorAll('*')].find(
                e => e.childElementCount === 0 && e.textContent.trim() === {json.dumps(text)});
            if (hit) hit.click();
            return Boolean(hit); }})()""")
        if not clicked:
            raise ScreenshotError(f"the page has no element reading {text!r}")
        wait_for(f"{then_shows} after clicking {text!r}", lambda: Observation(bool(self.evaluate(then_shows)),
                                                                          "not yet"), 30, 0.5)

    def screenshot(self, out: Path) -> Path:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return out

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close")
        self.socket.close()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


# A picture the report shows inline once its attachment row is open (the logo is an SVG, not an img).
_PICTURE_SHOWN = "[...document.querySelectorAll('img')].some(i => i.naturalWidth > 200)"


def take(report: Path, claim: str, out: Path) -> tuple[list[Path], dict[str, Any]]:
    """The overview, a test of ``claim`` with its pod timeline opened, and the conformance matrix entry."""
    url = report.resolve().as_uri()
    cases = test_cases(report)
    case = pick(cases, claim)
    matrix = next((c for c in cases if c.get("fullName") == MATRIX_FULL_NAME), None)
    shots = []
    chromium = Browser()
    try:
        chromium.open(url, "Environment")
        shots.append(chromium.screenshot(out / "overview.png"))
        chromium.open(f"{url}#testresult/{case['uid']}", TIMELINE_ATTACHMENT)
        chromium.click_text(TIMELINE_ATTACHMENT, _PICTURE_SHOWN)
        shots.append(chromium.screenshot(out / f"{claim.lower()}-test.png"))
        if matrix:
            chromium.open(f"{url}#testresult/{matrix['uid']}", "Conformance matrix")
            shots.append(chromium.screenshot(out / "matrix.png"))
    finally:
        chromium.close()
    return shots, case


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reports.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--report", type=Path, default=REPORT, help="the single-file Allure report")
    parser.add_argument("--claim", default="C3", help="show a test of this claim (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=REPORT.parent.parent / "screenshots")
    args = parser.parse_args(argv)
    try:
        if not args.report.exists():
            raise ScreenshotError(f"no report at {args.report}: run ./dkc run first")
        shots, case = take(args.report, args.claim, args.out)
    except (ScreenshotError, WaitTimeout) as exc:
        print(f"dkc: error: {exc}", file=sys.stderr)
        return 2
    print(f"screenshots of {args.report}: " + ", ".join(str(shot) for shot in shots) + f" (test: {case['name']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
