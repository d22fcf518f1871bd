"""Pytest options and session fixtures: cluster → (deployment, in later layers) → clients."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kubernetes import client

from clusters import PROVIDERS, ClusterInfo, Provider, ProviderOptions
from clusters.provider import DEFAULT_CLUSTER_NAME
from clusters.readiness import api_client
from clusters.session import CONTROLLER_PID, RUN_DIR_ENV, acquire, cluster_use, release, run_dir_from_env
from common import record
from common.errors import DkcError
from common.signals import SessionSignals
from deploy.discover import Selectors
from deploy.helm_values import option_problem
from deploy.settings import COMBINATIONS
from images.dagster import DAGSTER_VERSION
from reports.allure_files import ReportEnvironment
from reports.evidence import AllureRecorder
from reports.launches import LAUNCHES
from reports.plugin import without_group
from reports.session import ReportSession, WorkerRedaction, record_environment
from suites.scheduling import CombinationScheduling


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dkc", "dagster-k8s-conformance")
    group.addoption("--cluster", default="local", choices=PROVIDERS, help="cluster provider (default: local)")
    group.addoption("--cluster-name", default=DEFAULT_CLUSTER_NAME, help="cluster name (default: %(default)s)")
    group.addoption("--kubeconfig", type=Path, default=None, help="kubeconfig (existing; where kind writes one)")
    group.addoption("--context", default=None, help="kubeconfig context (existing provider)")
    group.addoption("--k8s-version", default=None, help="Kubernetes version for local/kind, e.g. v1.34.4")
    group.addoption("--nodes", type=int, default=1, help="node count (default: 1)")
    group.addoption("--kind-node-image", default=None,
                    help="kind: a node image instead of the one built here (e.g. kindest/node:v1.34.0)")
    group.addoption("--keep", action="store_true", help="keep the cluster and test namespaces for debugging")
    group.addoption("--dagster-version", default=DAGSTER_VERSION,
                    help="Dagster release to deploy (default: %(default)s)")
    group.addoption("--combination", action="append", choices=COMBINATIONS, default=[],
                    help="launcher/executor combination to test (repeatable; default: all)")
    group.addoption("--webserver-replicas", type=int, default=1, help="webserver replicas (default: 1)")
    group.addoption("--celery-workers", type=int, default=2, help="Celery worker replicas (default: 2)")
    group.addoption("--celery-concurrency", type=int, default=1,
                    help="concurrency of each Celery worker (default: 1)")
    group.addoption("--dagster", default="deploy", choices=("deploy", "existing", "helm"),
                    help="deploy Dagster per combination (default), test one already deployed (--dagster-namespace), "
                         "or install the official Helm chart per combination (--chart)")
    group.addoption("--chart", type=Path, default=None, help="directory of the official Dagster chart (--dagster helm)")
    group.addoption("--helm-values", type=Path, default=None,
                    help="your values for the chart, applied after the suite's (--dagster helm)")
    group.addoption("--dagster-namespace", default=None, help="namespace of the Dagster to test (--dagster existing)")
    group.addoption("--webserver-selector", default=Selectors.webserver,
                    help="label selector of the webserver Deployment (default: %(default)s)")
    group.addoption("--daemon-selector", default=Selectors.daemon,
                    help="label selector of the daemon Deployment (default: %(default)s)")
    group.addoption("--code-location-selector", default=Selectors.code_locations,
                    help="label selector of the code location Deployments (default: %(default)s)")
    group.addoption("--celery-selector", default=Selectors.celery_workers,
                    help="label selector of the Celery worker Deployment (default: %(default)s)")
    group.addoption("--instance-config-map", default=None,
                    help="name of the instance ConfigMap (default: the one holding dagster.yaml)")
    group.addoption("--allow-chaos", action="store_true",
                    help="let ha/chaos tests kill pods of an existing deployment (--dagster existing)")
    group.addoption("--outages-on", choices=COMBINATIONS, default=None,
                    help="run the outage claims (marker outage: C23-C26, C28; minutes each) on this combination only "
                         "and skip them on the others, saying so (./dkc test: k8s-job, to fit CI; default: every one)")
    group.addoption("--report-dir", type=Path, default=None,
                    help="write the conformance matrix and Allure files here, redacted (./dkc run: reports/out)")


def provider_options(config: pytest.Config) -> ProviderOptions:
    return ProviderOptions(
        name=config.getoption("--cluster-name"), kubeconfig=config.getoption("--kubeconfig"),
        context=config.getoption("--context"), k8s_version=config.getoption("--k8s-version"),
        node_count=config.getoption("--nodes"), keep=config.getoption("--keep"),
        node_image=config.getoption("--kind-node-image"),
        dagster_namespace=config.getoption("--dagster-namespace") if config.getoption("--dagster") == "existing"
        else None,
    )


def _is_controller(config: pytest.Config) -> bool:
    return not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("--dagster") == "existing" and not config.getoption("--dagster-namespace"):
        raise pytest.UsageError("--dagster existing needs --dagster-namespace NS: the namespace of the Dagster to test")
    helm_problem = option_problem(config.getoption("--dagster"), config.getoption("--chart"),
                                  config.getoption("--helm-values"))
    if helm_problem:
        raise pytest.UsageError(helm_problem)
    report_dir = config.getoption("--report-dir")
    if report_dir and _is_controller(config):
        alluredir = config.getoption("--alluredir", None)
        config.pluginmanager.register(ReportSession(report_dir, Path(alluredir) if alluredir else None), "dkc-report")
    if not _is_controller(config) and config.getoption("--alluredir", None):
        config.pluginmanager.register(WorkerRedaction(Path(config.getoption("--alluredir"))), "dkc-worker-redaction")
    if _is_controller(config):
        # Workers are started after this and inherit the variable. A session started from inside another one (a
        # self-test running the suites) inherits that one's too, but must not use it: releasing it would take the
        # other session off the cluster and delete the cluster under its tests.
        config.stash[_INHERITED_RUN_DIR] = os.environ.get(RUN_DIR_ENV)
        os.environ[RUN_DIR_ENV] = tempfile.mkdtemp(prefix="dkc-run-")
        (Path(os.environ[RUN_DIR_ENV]) / CONTROLLER_PID).write_text(str(os.getpid()))  # releases the cluster
    record.install(AllureRecorder())  # deploy phases, launches, waits and faults become Allure steps
    LAUNCHES.subscribe()
    # Ctrl-C / SIGTERM: cleanup as at a normal end, never cut short (common/signals.py).
    config.pluginmanager.register(SessionSignals(config, run_dir_from_env()), "dkc-signals")


_INHERITED_RUN_DIR = pytest.StashKey[str | None]()


@pytest.hookimpl(trylast=True)  # after pytest has torn the session's fixtures (the deployments) down
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    run_dir = run_dir_from_env()
    if not _is_controller(config) or run_dir is None:
        return
    try:
        release(config.getoption("--cluster"), provider_options(config), run_dir)
    except DkcError as exc:
        print(f"\ndkc: error while deleting the cluster: {exc}")
    shutil.rmtree(run_dir, ignore_errors=True)
    inherited = config.stash.get(_INHERITED_RUN_DIR, None)
    if inherited is None:
        os.environ.pop(RUN_DIR_ENV, None)
    else:
        os.environ[RUN_DIR_ENV] = inherited


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """A test on the cluster shares it with the tests of the other workers and sessions, from its setup (where a
    deployment may be made) to its teardown (where one may be removed); a ``cluster_wide`` test has it alone."""
    if not item.get_closest_marker("needs_cluster") or item.get_closest_marker("skip"):
        yield  # a test skipped outright (e.g. an outage on another combination than --outages-on) waits for nobody
        return
    use = cluster_use(item.config.getoption("--cluster"), provider_options(item.config))
    if item.get_closest_marker("cluster_wide"):
        with use.alone(f"• {item.nodeid} hits the whole cluster: it waits until the tests beside it end ..."):
            yield
    else:
        with use.shared():
            yield


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> CombinationScheduling | None:
    """``--dist loadgroup``: each combination's tests on one worker (suites/scheduling.py: why not xdist's own)."""
    return CombinationScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """xdist's loadgroup appends ``@<group>`` to a grouped test's id: JUnit, the matrix and comparisons name the
    test as a session in one process does."""
    report.nodeid = without_group(report.nodeid)


@pytest.fixture(scope="session")
def cluster_provider(pytestconfig: pytest.Config) -> tuple[Provider, ClusterInfo]:
    # Bringing a cluster up takes a while: show its progress lines live instead of capturing them.
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    try:
        with capture.global_and_fixture_disabled():
            return acquire(pytestconfig.getoption("--cluster"), provider_options(pytestconfig), run_dir_from_env())
    except DkcError as exc:
        pytest.exit(f"dkc: error: {exc}", returncode=2)


@pytest.fixture(scope="session")
def cluster(cluster_provider: tuple[Provider, ClusterInfo], pytestconfig: pytest.Config) -> ClusterInfo:
    """A ready cluster: nodes Ready, CoreDNS available, the default ServiceAccount present."""
    info = cluster_provider[1]
    record_environment(pytestconfig, ReportEnvironment(
        cluster_provider=info.provider, kubernetes_version=info.kubernetes_version or "unknown",
        node_count=info.node_count, dagster_version=pytestconfig.getoption("--dagster-version"),
        combinations=pytestconfig.getoption("--combination") or list(COMBINATIONS)))
    return info


@pytest.fixture(scope="session")
def load_image(cluster_provider: tuple[Provider, ClusterInfo]) -> Callable[[str, Path], str]:
    """Load an image archive into every node of the cluster; returns the image reference."""
    provider, info = cluster_provider

    def load(reference: str, archive: Path) -> str:
        if "load-image" not in info.capabilities:
            pytest.skip(f"the {info.provider} provider cannot load images built here ({reference})")
        provider.load_image(archive)
        return reference

    return load


@pytest.fixture(scope="session")
def kube(cluster: ClusterInfo) -> Iterator[client.ApiClient]:
    """A Kubernetes API client for the session's cluster."""
    api = api_client(cluster.kubeconfig, cluster.context)
    try:
        yield api
    finally:
        api.close()
