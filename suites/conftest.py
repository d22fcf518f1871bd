"""Fixtures shared by the suites: a labelled namespace per test module, images loaded into the cluster."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from chaos.faults import ControlPlane
from clusters.provider import RUN_NODE_LABEL
from common.errors import DkcError
from deploy import helm_deploy
from deploy.access import missing_access
from deploy.bringup import deploy, existing_secret_value, teardown
from deploy.deployment import Deployment
from deploy.discover import DiscoveredDagster, Selectors, discover, settings_for
from deploy.images import LoadImage, build_and_load, code_locations
from deploy.instance_config import combinations_served
from deploy.names import POSTGRES_PASSWORD_KEY, POSTGRES_SECRET
from deploy.preflight import check_can_run
from deploy.settings import (
    COMBINATIONS,
    SECRET_ENV_NAME,
    TEST_ENV_SECRET,
    DeploymentSettings,
    location_secret_value,
    run_k8s_config_for,
)
from images.dagster import check_dagster_version
from observation.kube import watch_until
from reports.collect import Evidence, failure_dump
from reports.evidence import claims_of, label_test, title_of, title_test
from reports.launches import LAUNCHES
from reports.redact import register_secret
from suites.hold import holding, remove_releases

SUITE_LABEL = "dkc.dagster.io/suite"


@pytest.fixture(scope="module")
def namespace(kube: client.ApiClient, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace, labelled as ours, deleted after the module (and waited for) unless --keep."""
    core = client.CoreV1Api(kube)
    module = request.module.__name__.rsplit(".", 1)[-1].replace("_", "-")
    name = f"dkc-{module}-{uuid.uuid4().hex[:6]}"[:63]
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={SUITE_LABEL: module})))
    watch_until(core.list_namespaced_service_account, f"ServiceAccount {name}/default",
                lambda sa: sa.metadata.name == "default", 60, namespace=name)
    try:
        yield name
    finally:
        if not request.config.getoption("--keep"):
            core.delete_namespace(name, propagation_policy="Foreground")


def run_node_label(api: client.ApiClient) -> str | None:
    """RUN_NODE_LABEL when some node carries it (a cluster of more than one node made by the suite), else None."""
    try:
        labelled = client.CoreV1Api(api).list_node(label_selector=RUN_NODE_LABEL, _request_timeout=10).items
    except ApiException as exc:  # an identity that may not list nodes deploys as on one node
        print(f"dkc: cannot list nodes ({exc.status} {exc.reason}): run pods are not pinned to a run node")
        return None
    return RUN_NODE_LABEL if labelled else None


class DeploymentPool:
    """Deploys each launcher/executor combination once per session (per xdist worker), on first use; or, with
    ``--dagster existing``, describes the Dagster someone else deployed as each combination it serves."""

    def __init__(self, api: client.ApiClient, load: LoadImage, config: pytest.Config,
                 existing: DiscoveredDagster | None = None) -> None:
        self.api, self.load, self.existing = api, load, existing
        self.dagster_version: str = config.getoption("--dagster-version")
        self.keep: bool = config.getoption("--keep")
        self.shape = {"webserver_replicas": config.getoption("--webserver-replicas"),
                      "celery_worker_replicas": config.getoption("--celery-workers"),
                      "celery_worker_concurrency": config.getoption("--celery-concurrency"),
                      "run_k8s_config": run_k8s_config_for(None if existing else run_node_label(api))}
        # Several nodes (a run node labelled): compute logs go to an object store every pod reaches.
        self.object_store = not existing and run_node_label(api) is not None
        # --dagster helm: the official chart, installed per combination in dkc-helm-<combination> (None: our manifests)
        self.chart: tuple[Path, Path | None] | None = (
            (config.getoption("--chart"), config.getoption("--helm-values"))
            if config.getoption("--dagster") == "helm" else None)
        self.deployed: dict[str, Deployment] = {}
        self.failed: dict[str, DkcError] = {}

    def get(self, combination: str) -> Deployment:
        if combination in self.failed:  # one failed bring-up per session, not one per test module
            raise self.failed[combination]
        if combination not in self.deployed:
            try:
                self.deployed[combination] = (self._existing(combination) if self.existing
                                              else self._deploy(combination))
            except DkcError as exc:
                self.failed[combination] = exc
                raise
        return self.deployed[combination]

    def _existing(self, combination: str) -> Deployment:
        """Someone else's Dagster as ``combination``, once its parts are ready and its code locations loaded."""
        assert self.existing is not None
        deployment = Deployment(settings_for(self.existing, combination), self.api)
        check_can_run(deployment.apps, deployment.webserver, deployment.settings)
        return deployment

    def _deploy(self, combination: str) -> Deployment:
        celery = combination == "celery-k8s"
        image_set, locations = build_and_load(self.load, self.dagster_version, celery=celery,
                                              store=self.object_store and not self.chart)
        source = helm_deploy.chart_source(*self.chart, self.load) if self.chart else None
        namespace = f"dkc-helm-{combination}" if source else f"dkc-{combination}"
        cfg = DeploymentSettings(
            combination=combination, namespace=namespace, images=image_set,
            code_locations=code_locations(locations),
            postgres_password=existing_secret_value(self.api, namespace, POSTGRES_SECRET, POSTGRES_PASSWORD_KEY)
            or secrets.token_urlsafe(18),
            test_secret_value=existing_secret_value(self.api, namespace, TEST_ENV_SECRET, SECRET_ENV_NAME)
            or "dkc-secret-" + secrets.token_hex(12),
            helm=source, **self.shape,
        )
        own_secrets = [location_secret_value(cfg.test_secret_value, location) for location, _ in locations]
        for secret in (cfg.postgres_password, cfg.test_secret_value, *own_secrets):
            register_secret(secret)  # never in a report, whatever gets attached
        return (helm_deploy.deploy if source else deploy)(self.api, cfg, keep=self.keep)

    def not_served(self, combination: str) -> str | None:
        """Why the existing deployment cannot be tested as ``combination`` (None: it can, or it is ours)."""
        if not self.existing or combination in combinations_served(self.existing.instance):
            return None
        return (f"the Dagster in {self.existing.namespace} runs the {self.existing.instance.run_launcher_class}, "
                f"which does not serve {combination}")

    def close(self) -> None:
        if self.existing:  # someone else's: remove only what this session made there
            removed = remove_releases(client.BatchV1Api(self.api), self.existing.namespace)
            print(f"✓ Removed {removed} release Job(s) this session made in {self.existing.namespace}")
            return
        if not self.keep and self.deployed:
            teardown(self.api, *(d.settings for d in self.deployed.values()))


def existing_dagster(api: client.ApiClient, config: pytest.Config) -> DiscoveredDagster:
    """The Dagster named by --dagster-namespace, found by its labels; the suite's access there checked first."""
    namespace = config.getoption("--dagster-namespace")
    selectors = Selectors(webserver=config.getoption("--webserver-selector"),
                          daemon=config.getoption("--daemon-selector"),
                          code_locations=config.getoption("--code-location-selector"),
                          celery_workers=config.getoption("--celery-selector"),
                          instance_config_map=config.getoption("--instance-config-map"))
    found = discover(api, namespace, selectors)
    missing = missing_access(api, namespace, chaos=config.getoption("--allow-chaos"))
    if missing:
        raise DkcError(f"the suite's identity may not {'; '.join(missing)}: grant it, or choose another identity "
                           f"with --kubeconfig/--context")
    for secret in (found.postgres_password, found.test_secret_value):
        register_secret(secret)  # searched for in pods, never in a report
    return found


@pytest.fixture(scope="session")
def deployments(kube: client.ApiClient, load_image: LoadImage, pytestconfig: pytest.Config) -> Iterator[DeploymentPool]:
    existing = None
    try:
        if pytestconfig.getoption("--dagster") == "existing":
            existing = existing_dagster(kube, pytestconfig)
        else:
            check_dagster_version(pytestconfig.getoption("--dagster-version"))
    except DkcError as exc:
        pytest.exit(f"dkc: error: {exc}", returncode=2)
    pool = DeploymentPool(kube, load_image, pytestconfig, existing)
    capture = pytestconfig.pluginmanager.getplugin("capturemanager")
    try:
        yield pool
    finally:
        with capture.global_and_fixture_disabled():
            pool.close()


def selected_combinations(config: pytest.Config) -> list[str]:
    return config.getoption("--combination") or list(COMBINATIONS)


@pytest.fixture(scope="module", params=COMBINATIONS)
def dagster(request: pytest.FixtureRequest, deployments: DeploymentPool) -> Deployment:
    """A ready Dagster deployment of one launcher/executor combination (deployed on first use)."""
    combination = request.param
    if reason := deployments.not_served(combination):
        pytest.skip(reason)
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():
        try:
            return deployments.get(combination)
        except DkcError as exc:
            failure = str(exc) if deployments.existing else f"deploying {combination} failed: {exc}"
    pytest.fail(failure, pytrace=False)  # outside the except: one line, no chained traceback


def _test_identity(item: pytest.Item) -> tuple[list[str], str, dict[str, object]]:
    parameters = getattr(getattr(item, "callspec", None), "params", {})
    return [marker.name for marker in item.iter_markers()], getattr(item, "originalname", item.name), parameters


_EVIDENCE = pytest.StashKey[Evidence]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    title_test(*_test_identity(item))
    yield
    if _EVIDENCE in item.stash:  # right after the body: the attachments belong to the test, not its teardown
        item.stash[_EVIDENCE].finish()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test on a Dagster deployment shows its runs' event logs and pods' states, Allure or not (the e2e
    framework's namespace dump on failure)."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed or _STARTED not in item.stash:
        return
    deployment, started, first_launch = item.stash[_STARTED]
    try:
        report.sections.append(("dagster evidence", failure_dump(deployment, started, LAUNCHES.since(first_launch))))
    except Exception as exc:  # evidence is for the reader; it never changes the verdict
        report.sections.append(("dagster evidence", f"not collected: {type(exc).__name__}: {exc}"))


_STARTED = pytest.StashKey[tuple[Deployment, float, int]]()


@pytest.fixture(autouse=True)
def report_evidence(request: pytest.FixtureRequest) -> Iterator[None]:
    """Title the test by its claim in Allure; for a test on a Dagster deployment, note when it started (a failure
    dumps its runs' evidence); when Allure records, also record the namespace's pods meanwhile and attach the
    evidence of its runs afterwards."""
    node = request.node
    markers, name, parameters = _test_identity(node)
    label_test(markers, name, parameters)
    if "dagster" not in request.fixturenames:
        yield
        return
    node.stash[_STARTED] = (request.getfixturevalue("dagster"), time.time(), LAUNCHES.mark())
    if not request.config.getoption("--alluredir", None):
        yield
        return
    deployment = request.getfixturevalue("dagster")
    title = title_of(name, claims_of(markers), parameters)
    with Evidence(deployment, title, node.user_properties) as evidence:
        node.stash[_EVIDENCE] = evidence
        yield


@pytest.fixture
def control_plane(dagster: Deployment) -> ControlPlane:
    """The pods of the deployment's webserver, daemon and code location servers, by their Deployments' selectors."""
    names = dagster.settings.names
    return ControlPlane.of(dagster.apps, dagster.namespace, names.webserver, names.daemon,
                           {location.name: location.service for location in dagster.settings.code_locations})


@pytest.fixture
def held_run(dagster: Deployment) -> Iterator[str]:
    """A run of the hold job whose op said it holds (in the event log); released afterwards whatever happened."""
    with holding(dagster) as run_id:
        yield run_id


def pytest_collection_finish(session: pytest.Session) -> None:
    """Against someone else's deployment, tests that kill its pods (markers ha, chaos) need --allow-chaos."""
    config = session.config
    if config.getoption("--dagster") != "existing" or config.getoption("--allow-chaos") or config.option.collectonly:
        return
    faulty = [item for item in session.items if item.get_closest_marker("ha") or item.get_closest_marker("chaos")]
    if faulty:
        pytest.exit(f"dkc: error: {len(faulty)} selected test(s) kill pods or inject faults (markers ha, chaos) in the "
                    f"existing deployment in {config.getoption('--dagster-namespace')}: pass --allow-chaos to let "
                    f"them, or deselect them with -m 'not ha and not chaos'", returncode=2)


def one_node_for_pods(config: pytest.Config) -> str:
    """Why the cluster the suite makes has only one node that takes pods ("" if it has more, or is not ours):
    a multi-node claim is skipped at collection then, so that a cluster-wide one waits for nobody."""
    cluster, nodes = config.getoption("--cluster"), config.getoption("--nodes")
    if cluster == "local" or (cluster == "kind" and nodes < 3):
        return (f"needs a second node that takes pods (the {cluster} cluster has one): run with --cluster kind "
                "--nodes 3")
    return ""


@pytest.hookimpl(tryfirst=True)  # before xdist's: under pytest < 9.2 its loadgroup reads the markers set here
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its combination, and group it by combination for `--dist loadgroup`; tests of a
    combination not chosen with --combination are deselected (absent from JUnit, Allure and the matrix)."""
    chosen = set(selected_combinations(config))
    outages_on = config.getoption("--outages-on")
    few_nodes = one_node_for_pods(config)
    kept, dropped = [], []
    for item in items:
        if few_nodes and item.get_closest_marker("multi_node"):
            item.add_marker(pytest.mark.skip(reason=few_nodes))
        combination = getattr(getattr(item, "callspec", None), "params", {}).get("dagster")
        if combination:
            item.add_marker(getattr(pytest.mark, combination.replace("-", "_")))
            item.add_marker(pytest.mark.xdist_group(combination))
            about = item.get_closest_marker("combinations")
            if about and combination not in about.args:  # known at collection: a cluster-wide test waits for nobody
                item.add_marker(pytest.mark.skip(reason=about.kwargs.get("reason") or (
                    f"claim is about {' / '.join(about.args)}, not {combination}")))
            if outages_on and combination != outages_on and item.get_closest_marker("outage"):
                item.add_marker(pytest.mark.skip(reason=(
                    f"outage claims run on {outages_on} only in this session (--outages-on); `./dkc run` runs them "
                    "on every combination")))
        (dropped if combination and combination not in chosen else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
