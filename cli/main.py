"""``dkc``: bring clusters up and down, and run the suite.

    dkc up | down | status | kubeconfig     manage a cluster (local by default)
    dkc run                                  the main job: cluster, suite, report
    dkc test                                 the project's tests: self-tests and suites on a real cluster
    dkc images                               build (or take from the cache) every image the suites load
    dkc sample-location                      the suite's code locations for a Dagster deployed with the chart
    dkc compare BEFORE AFTER                 what changed between two reports
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from contextlib import suppress
from pathlib import Path
from types import FrameType

from clusters import PROVIDERS, ProviderOptions, get_provider
from clusters.provider import DEFAULT_CLUSTER_NAME
from clusters.session import adopt
from common.errors import DkcError
from common.progress import SPEAKER_ENV, say

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REPORT_DIR = PROJECT_ROOT / "reports" / "out"


def _cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", default="local", help=f"provider: {', '.join(PROVIDERS)} (default: local)")
    parser.add_argument("--name", default=DEFAULT_CLUSTER_NAME, help="cluster name (default: %(default)s)")
    parser.add_argument("--kubeconfig", type=Path, help="kubeconfig of an existing cluster / where kind writes one")
    parser.add_argument("--context", help="kubeconfig context (existing provider)")
    parser.add_argument("--k8s-version", help="Kubernetes version, e.g. v1.34.4 (local, kind)")
    parser.add_argument("--nodes", type=int, default=1, help="node count (default: 1)")
    parser.add_argument("--kind-node-image", help="kind: a node image to use instead of the one built here "
                        "(e.g. kindest/node:v1.34.0; Docker pulls it)")
    parser.add_argument("--keep", action="store_true", help="keep whatever was made, even after a failure")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dkc", description="Dagster-on-Kubernetes conformance and chaos suite")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (("up", "create a cluster, or reuse a healthy one"), ("down", "delete a cluster we made"),
                       ("status", "show whether a cluster exists and is healthy"),
                       ("kubeconfig", "print the kubeconfig path of a cluster")):
        _cluster_arguments(commands.add_parser(name, help=text))
    images = commands.add_parser("images", help="build (or take from the cache) every image the suites load")
    images.add_argument("--dagster-version", default=None, help="Dagster release of the images (default: ours)")
    sample = commands.add_parser("sample-location", help="build the suite's code location images and print the Helm "
                                 "values that add them to a Dagster deployed with the official chart")
    sample.add_argument("--namespace", default="dagster", help="namespace of that Dagster (for the kubectl lines)")
    sample.add_argument("--dagster-version", default=None, help="Dagster release of the images (default: ours)")
    sample.add_argument("--push", metavar="REGISTRY", help="push the images to REGISTRY (host:port/path) with skopeo; "
                        "without it, load the printed OCI archives into your nodes yourself")
    sample.add_argument("--insecure-registry", action="store_true", help="the registry speaks plain HTTP")
    compare = commands.add_parser("compare", help="two report directories side by side: what changed")
    compare.add_argument("before", type=Path, help="the older report directory (e.g. last night's reports/out)")
    compare.add_argument("after", type=Path, help="the newer one")
    compare.add_argument("--fail-on", default="any", choices=("any", "new", "none"),
                         help="exit 1 when AFTER has a failure, error or XPASS (any, the default), only one that "
                         "BEFORE did not have (new), or never (none)")
    compare.add_argument("--margin", type=float, default=0.25,
                         help="a recorded *_seconds figure counts as worse above this share (default 0.25)")
    compare.add_argument("--out", type=Path, help="where to write the comparison (default: AFTER/comparison.md)")
    for name, text in (("run", "the main job: cluster up, conformance suite, report"),
                       ("test", "self-tests, then the suites on a real cluster")):
        sub = commands.add_parser(name, help=text)
        _cluster_arguments(sub)
        if name == "run":
            sub.add_argument("--previous-report", type=Path, metavar="DIR",
                             help="an earlier report directory (e.g. last night's reports/out): the Allure report "
                             "carries its history and trends on")
        sub.add_argument("--workers", type=int, default=DEFAULT_WORKERS, metavar="N",
                         help="pytest-xdist workers; a combination's tests stay on one (default: %(default)s, one per "
                         "combination; 0: one process, serially)")
        sub.add_argument("pytest_args", nargs=argparse.REMAINDER, help="extra pytest arguments after --")
    return parser


CI_OUTAGES_ON = "k8s-job"  # the combination `dkc test` runs the outage claims on
DEFAULT_WORKERS = 3  # the combinations overlap: most of a test is waiting on the cluster, not work


def options_from(args: argparse.Namespace) -> ProviderOptions:
    return ProviderOptions(name=args.name, kubeconfig=args.kubeconfig, context=args.context,
                           k8s_version=args.k8s_version, node_count=args.nodes, keep=args.keep,
                           node_image=args.kind_node_image)


def pytest_argv(args: argparse.Namespace, paths: list[str], extra: list[str]) -> list[str]:
    """The pytest command line for ``run``/``test``, passing the cluster options through."""
    argv = [sys.executable, "-m", "pytest", *paths, f"--cluster={args.cluster}", f"--cluster-name={args.name}",
            f"--nodes={args.nodes}"]
    if args.kubeconfig:
        argv.append(f"--kubeconfig={args.kubeconfig}")
    if args.context:
        argv.append(f"--context={args.context}")
    if args.k8s_version:
        argv.append(f"--k8s-version={args.k8s_version}")
    if args.kind_node_image:
        argv.append(f"--kind-node-image={args.kind_node_image}")
    if args.keep:
        argv.append("--keep")
    extra = [a for a in extra if a != "--"]
    return argv + _distribution(getattr(args, "workers", 0), extra) + extra


def _distribution(workers: int, extra: list[str]) -> list[str]:
    """xdist options for ``workers``, unless the pytest arguments choose for themselves (-n, -p no:xdist)."""
    chosen = any(a.startswith(("-n", "--numprocesses", "--dist")) or a == "no:xdist" for a in extra)
    return [] if workers <= 0 or chosen else [f"--numprocesses={workers}", "--dist=loadgroup"]


def _pytest(argv: list[str], pytest_args: list[str]) -> int:
    images = _images_beside(pytest_args)
    print("$ " + " ".join(argv[1:]), file=sys.stderr, flush=True)
    try:
        return wait_for_pytest(subprocess.Popen(argv, cwd=PROJECT_ROOT))
    finally:
        if images is not None:
            _stop(images)


def pytest_option(pytest_args: list[str], name: str) -> str | None:
    """The value of ``name`` among pytest's arguments (``--name V`` or ``--name=V``; the last one wins)."""
    found = None
    for index, arg in enumerate(pytest_args):
        if arg == name and index + 1 < len(pytest_args):
            found = pytest_args[index + 1]
        elif arg.startswith(name + "="):
            found = arg.split("=", 1)[1]
    return found


def _images_beside(pytest_args: list[str]) -> subprocess.Popen[bytes] | None:
    """Build the suite's images beside pytest, so that on a new machine they are built while the cluster's
    binaries are (the session then finds them in the cache, or waits on the build's lock)."""
    if pytest_option(pytest_args, "--dagster") == "existing":
        return None  # someone else's Dagster: no image of ours
    version = pytest_option(pytest_args, "--dagster-version")
    argv = [sys.executable, "-m", "cli.main", "images", *(["--dagster-version", version] if version else [])]
    return subprocess.Popen(argv, cwd=PROJECT_ROOT, stdout=subprocess.DEVNULL,
                            env={**os.environ, SPEAKER_ENV: "images"}, start_new_session=True)


def _stop(child: subprocess.Popen[bytes]) -> None:
    """End the image build if pytest ended first (it removes its own half-made trees on SIGTERM)."""
    if child.poll() is None:
        child.terminate()
        with suppress(subprocess.TimeoutExpired):
            child.wait(timeout=60)
        if child.poll() is None:
            child.kill()
            child.wait()


def wait_for_pytest(child: subprocess.Popen[bytes]) -> int:
    """Wait until pytest ends, also after Ctrl-C or SIGTERM: the signal is passed on once (pytest then removes what
    the session made, as at a normal end) and dkc keeps waiting. Killing pytest instead (what subprocess.call does
    on Ctrl-C) left the cluster, its namespaces and processes running."""
    received: list[int] = []

    def pass_on(signum: int, frame: FrameType | None) -> None:
        if not received:  # pytest ignores a second one anyway (from the terminal, Ctrl-C reached it already)
            with suppress(ProcessLookupError):
                child.send_signal(signum)
        received.append(signum)
        print(f"dkc: {signal.Signals(signum).name}: waiting for pytest to remove what the session made",
              file=sys.stderr, flush=True)

    previous = {signum: signal.signal(signum, pass_on) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        status = child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if received:
        print(f"dkc: interrupted (pytest exited with {status})", file=sys.stderr)
        return 130
    return status


def _terminate_as_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # `dkc up`/`down` clean up after Ctrl-C; SIGTERM gets the same treatment


def _previous_allure_report(previous: Path | None) -> Path | None:
    """The Allure report inside ``--previous-report``, checked before the run (not after an hour of it)."""
    if previous is None:
        return None
    from reports.compare import read_report

    if previous.resolve().is_relative_to(REPORT_DIR.resolve()):
        raise DkcError(f"--previous-report {previous} is inside {REPORT_DIR}, which this run replaces: copy it "
                       "elsewhere first (cp -r reports/out last-night) and pass the copy")
    read_report(previous)  # a directory that is no report is one clear error now
    return previous / "allure-report"


def _allure_html(previous: Path | None = None) -> None:
    """The HTML report from the session's (already redacted) Allure results, with its history (carried on from the
    previous report when given); a missing prerequisite is one line."""
    from images.cache import cache_root
    from reports.allure_cli import carry_history, ensure_allure, export_history, generate_html

    results = REPORT_DIR / "allure-results"
    if not results.is_dir():
        return
    try:
        allure = ensure_allure(cache_root())
        if previous and not carry_history(previous, results):
            print(f"dkc: {previous} has no Allure history: the trends start with this report", file=sys.stderr)
        index = generate_html(results, REPORT_DIR / "allure-report", allure=allure)
        export_history(results, index.parent, allure=allure)
    except DkcError as exc:
        print(f"dkc: no HTML report: {exc}", file=sys.stderr)
        return
    print(f"dkc: report {index}  (JUnit {REPORT_DIR / 'junit.xml'}, matrix {REPORT_DIR / 'matrix.md'})",
          file=sys.stderr)


def _compare(args: argparse.Namespace) -> int:
    from reports.compare import compare, fails_gate, read_report, render_comparison

    comparison = compare(read_report(args.before), read_report(args.after), margin=args.margin)
    text = render_comparison(comparison)
    out = args.out or args.after / "comparison.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    print(text)
    failing = fails_gate(comparison, args.fail_on)
    print(f"dkc: comparison {out}: {len(comparison.changes)} test(s) changed, {len(comparison.newly_bad())} newly "
          f"failing or XPASS, {len(comparison.slower)} figure(s) worse"
          + (f"; failing the gate (--fail-on {args.fail_on})" if failing else ""), file=sys.stderr)
    return 1 if failing else 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        if args.command == "run":
            previous = _previous_allure_report(args.previous_report)
            shutil.rmtree(REPORT_DIR, ignore_errors=True)  # a report describes one run, never a mix
            REPORT_DIR.mkdir(parents=True, exist_ok=True)
            status = _pytest(pytest_argv(args, ["suites"], [
                f"--junitxml={REPORT_DIR / 'junit.xml'}", f"--report-dir={REPORT_DIR}",
                f"--alluredir={REPORT_DIR / 'allure-results'}", "--clean-alluredir", *args.pytest_args]),
                args.pytest_args)
            _allure_html(previous)
            return status
        if args.command == "test":
            # CI's budget: the outage claims (minutes each) on one combination; `run` has them on every one.
            outages = [] if any(a.startswith("--outages-on") for a in args.pytest_args) else [
                f"--outages-on={CI_OUTAGES_ON}"]
            return _pytest(pytest_argv(args, ["tests", "suites"], [*outages, *args.pytest_args]), args.pytest_args)
        if args.command == "compare":
            return _compare(args)
        if args.command == "images":
            from deploy.images import build_images
            from images.dagster import DAGSTER_VERSION

            built = build_images(args.dagster_version or DAGSTER_VERSION, celery=True)
            for reference, archive in (built.dagster, built.postgres, built.broker,
                                       *(image for _, image in built.locations)):
                print(f"{reference}\t{archive}")
            return 0
        if args.command == "sample-location":
            from deploy.sample_location import publish_sample_locations

            print(publish_sample_locations(args.namespace, args.dagster_version, args.push,
                                           tls_verify=not args.insecure_registry))
            return 0
        provider = get_provider(args.cluster, options_from(args))
        if args.command == "up":
            info = provider.create()
            adopt(args.cluster, options_from(args))  # yours now: a test session never deletes it
            print(info.kubeconfig)
        elif args.command == "down":
            provider.delete()
            adopt(args.cluster, options_from(args))
        elif args.command == "status":
            status = provider.status()
            print(status.summary())
            return 0 if status.healthy else 1
        elif args.command == "kubeconfig":
            print(provider.kubeconfig())
    except DkcError as exc:
        say(f"dkc: error: {exc}")
        return 2
    except KeyboardInterrupt:
        print("dkc: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
