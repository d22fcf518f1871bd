"""Self-tests: the pods the chaos experiments kill are selected as the deployment was discovered (its Deployments'
own selectors, whatever --webserver-selector & co. found), never by the chart's labels; the chart's labels and
names are spelled once, in deploy/names.py (no cluster: the fakes are tests/chart_fakes.py's)."""

from __future__ import annotations

import re

import pytest
import yaml
from kubernetes import client as k8s

from chaos import faults, outages
from chaos import run as chaos_run
from deploy import discover as d
from deploy import manifests, names
from deploy import settings as s
from deploy.deployment import Deployment
from deploy.settings import CodeLocation, DeploymentSettings, Images
from observation.kube import pods_selector, selector_text
from tests.chart_fakes import NS, Cluster, FakeNamespace, discover_in, k8s_namespace, patched_cluster, service


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Cluster:
    return patched_cluster(monkeypatch)


# --- a deployment labelled its own way --------------------------------------------------------------------------

WEB, DAEMON, CODE = {"app": "my-web"}, {"app": "my-daemon"}, {"app": "my-code"}
CUSTOM = d.Selectors(webserver="app=my-web", daemon="app=my-daemon", code_locations="app=my-code",
                     location_label="location")


def relabelled(deployment: k8s.V1Deployment, name: str, labels: dict[str, str]) -> k8s.V1Deployment:
    """The chart-shaped Deployment under another name, labelled (and selecting its pods) by ``labels`` only."""
    deployment.metadata.name = name
    deployment.metadata.labels = dict(labels)
    deployment.spec.selector.match_labels = dict(labels)
    deployment.spec.template.metadata.labels = dict(labels)
    return deployment


def custom_namespace() -> FakeNamespace:
    """The chart-shaped K8sRunLauncher namespace with no chart label left on the webserver, the daemon, the code
    locations and the webserver's Service: a team's own labels."""
    ns = k8s_namespace()
    webserver, daemon, alpha, beta, etl = ns.deployments
    ns.deployments = [relabelled(webserver, "team-web", WEB), relabelled(daemon, "team-daemon", DAEMON),
                      *(relabelled(dep, f"team-code-{name}", {**CODE, "location": name})
                        for dep, name in ((alpha, "alpha"), (beta, "beta"), (etl, "etl")))]
    ns.services = [service("team-web", WEB, 8080)]
    return ns


def discovered(cluster: Cluster) -> tuple[Deployment, faults.ControlPlane]:
    """The custom deployment as the suites get it: described by discovery, its pods by the control_plane fixture's
    ControlPlane.of (suites/conftest.py)."""
    found = discover_in(cluster, custom_namespace(), selectors=CUSTOM)
    dagster = Deployment(d.settings_for(found, "k8s-job"), k8s.ApiClient())
    parts = dagster.settings.names
    control_plane = faults.ControlPlane.of(dagster.apps, dagster.namespace, parts.webserver, parts.daemon,
                                           {loc.name: loc.service for loc in dagster.settings.code_locations})
    return dagster, control_plane


def referenced(experiment: str) -> set[str]:
    """The ``${name}`` variables an experiment file uses."""
    return set(re.findall(r"\$\{(\w+)\}", (chaos_run.EXPERIMENTS / experiment).read_text()))


def test_the_control_plane_is_selected_by_the_discovered_deployments_own_labels(cluster: Cluster) -> None:
    dagster, control_plane = discovered(cluster)
    assert (dagster.settings.names.webserver, dagster.settings.names.daemon) == ("team-web", "team-daemon")
    assert [loc.service for loc in dagster.settings.code_locations] == ["team-code-alpha", "team-code-beta"]
    assert control_plane == faults.ControlPlane("app=my-web", "app=my-daemon", {
        "alpha": "app=my-code,location=alpha", "beta": "app=my-code,location=beta"})
    assert dagster.chaos_variables == {"namespace": NS, "webserver_service": "team-web", "webserver_port": "8080"}


@pytest.mark.parametrize("name", faults.CONTROL_PLANE_FAULTS)
def test_every_control_plane_fault_runs_with_the_discovered_selectors_only(cluster: Cluster, name: str) -> None:
    dagster, control_plane = discovered(cluster)
    fault = faults.control_plane_fault(name, control_plane, "alpha")
    variables = faults.experiment_variables(fault, dagster.namespace, 180, dagster.chaos_variables)

    missing = referenced(fault.experiment) - set(variables)
    assert not missing, f"{fault.experiment} would fall back to its defaults (the chart's labels) for {missing}"
    assert not [v for v in variables.values() if "component=" in str(v)], variables
    assert not [sel for sel in fault.selectors if "component=" in sel], fault.selectors
    assert (variables["webserver_service"], variables["webserver_port"]) == ("team-web", "8080")
    expected = {
        "webserver": {"webserver_selector": "app=my-web"},
        "daemon": {"daemon_selector": "app=my-daemon"},
        "code-location": {"location": "alpha", "location_selector": "app=my-code,location=alpha"},
        "all-three": {"location": "alpha", "webserver_selector": "app=my-web", "daemon_selector": "app=my-daemon",
                      "locations_selector": "app=my-code,location in (alpha,beta)"},
    }[name]
    assert {key: variables[key] for key in expected} == expected
    assert set(fault.selectors) <= {"app=my-web", "app=my-daemon", "app=my-code,location=alpha",
                                    "app=my-code,location=beta"}


def test_the_run_worker_and_celery_experiments_need_only_what_the_suites_pass() -> None:
    """C14 and C21 pass chaos_variables + run_id; C8 passes the workers' current pods and their Deployment."""
    given = {"namespace", "webserver_service", "webserver_port", "recovery_timeout"}
    assert referenced("kill-run-pod.yaml") <= given | {"run_id"}
    assert referenced("delete-run-job.yaml") <= given | {"run_id"}
    assert referenced("kill-step-pod.yaml") <= given | {"run_id"}
    fault = faults.celery_worker_fault("w-1", "app=my-workers,pod-template-hash=abc", "team-workers")
    assert referenced(fault.experiment) <= given | set(fault.variables)
    assert fault.variables["worker_selector"] == "app=my-workers,pod-template-hash=abc"


# --- a Deployment selecting its pods by expressions ----------------------------------------------------------------

def with_selector(selector: k8s.V1LabelSelector) -> FakeNamespace:
    ns = k8s_namespace()
    ns.deployments[0].spec.selector = selector
    return ns


def test_pods_are_selected_by_the_deployments_match_expressions_too(cluster: Cluster) -> None:
    """Before: only matchLabels were read, so a Deployment selecting by matchExpressions gave "" (every pod in the
    namespace: kill-control-plane terminates them all)."""
    cluster.ns = with_selector(k8s.V1LabelSelector(match_labels={"team": "web"}, match_expressions=[
        k8s.V1LabelSelectorRequirement(key="tier", operator="In", values=["ui", "api"]),
        k8s.V1LabelSelectorRequirement(key="canary", operator="DoesNotExist")]))
    assert pods_selector(cluster.ns, NS, "dagster-webserver") == "team=web,tier in (api,ui),!canary"
    cluster.ns = with_selector(k8s.V1LabelSelector(match_expressions=[
        k8s.V1LabelSelectorRequirement(key="app", operator="NotIn", values=["x"]),
        k8s.V1LabelSelectorRequirement(key="web", operator="Exists")]))
    assert pods_selector(cluster.ns, NS, "dagster-webserver") == "app notin (x),web"


def test_a_deployment_that_selects_no_label_is_refused(cluster: Cluster) -> None:
    cluster.ns = with_selector(k8s.V1LabelSelector())
    with pytest.raises(LookupError, match="dagster-webserver selects its pods by no label"):
        pods_selector(cluster.ns, NS, "dagster-webserver")
    assert selector_text(None) == ""


def test_set_based_location_selectors_are_not_merged_into_a_wrong_one() -> None:
    parts = faults.ControlPlane("app=web", "app=daemon", {"alpha": "loc in (alpha)", "beta": "loc in (beta)"})
    with pytest.raises(ValueError, match="only key=value selectors merge"):
        faults.control_plane_fault("all-three", parts, "alpha")
    one = faults.ControlPlane("app=web", "app=daemon", {"alpha": "loc in (alpha),!canary"})
    assert faults.control_plane_fault("all-three", one, "alpha").variables["locations_selector"] == (
        "loc in (alpha),!canary")


# --- the chart's names, spelled once --------------------------------------------------------------------------------

def test_the_charts_selectors_and_names() -> None:
    assert names.selector(names.USER_DEPLOYMENTS_COMPONENT, deployment="alpha") == (
        "app.kubernetes.io/instance=dagster,component=user-deployments,deployment=alpha")
    assert names.location_selector("alpha") == names.selector("user-deployments", deployment="alpha")
    assert names.selector(names.POSTGRESQL_COMPONENT) == "app.kubernetes.io/instance=dagster,component=postgresql"
    assert (names.WEBSERVER_SELECTOR, names.DAEMON_SELECTOR, names.CODE_LOCATIONS_SELECTOR,
            names.CELERY_SELECTOR) == ("component=dagster-webserver", "component=dagster-daemon",
                                       "component=user-deployments", "component=celery")
    assert d.Selectors() == d.Selectors(names.WEBSERVER_SELECTOR, names.DAEMON_SELECTOR,
                                        names.CODE_LOCATIONS_SELECTOR, names.CELERY_SELECTOR, None, "deployment")
    assert (names.WEBSERVER, names.DAEMON, names.user_deployment("alpha")) == (
        "dagster-dagster-webserver", "dagster-daemon", "dagster-dagster-user-deployments-alpha")
    assert names.run_selector("r1") == "dagster/run-id=r1"
    assert names.run_job_pods("r1") == "job-name=dagster-run-r1"


def test_our_deployments_select_their_pods_by_the_charts_labels() -> None:
    cfg = DeploymentSettings(combination="celery-k8s", namespace=NS, images=Images("d:1", "pg:1", "redis:1"),
                             code_locations=(CodeLocation(name="alpha", image="a:1", python_file="/f.py"),))
    selected = {doc["metadata"]["name"]: doc["spec"]["selector"]["matchLabels"]
                for group in manifests.all_manifests(cfg).values() for doc in group if doc["kind"] == "Deployment"}
    assert selected == {
        names.POSTGRES: names.chart_labels("postgresql"), names.BROKER: names.chart_labels("redis"),
        names.user_deployment("alpha"): names.chart_labels("user-deployments", deployment="alpha"),
        names.WEBSERVER: names.chart_labels("dagster-webserver"), names.DAEMON: names.chart_labels("dagster-daemon"),
        names.CELERY_WORKERS: names.chart_labels("celery")}
    assert names.chart_labels("celery") == {"app.kubernetes.io/name": "dagster",
                                            "app.kubernetes.io/instance": "dagster", "component": "celery"}


def experiment_defaults(experiment: str) -> dict[str, object]:
    return yaml.safe_load((chaos_run.EXPERIMENTS / experiment).read_text())["configuration"]


def test_the_experiments_defaults_for_hand_runs_are_the_charts_names() -> None:
    """The files cannot import deploy/names.py: what they say when run by hand (`chaos run`) is checked against it."""
    for experiment in ("kill-webserver.yaml", "kill-daemon.yaml", "kill-code-location.yaml",
                       "kill-control-plane.yaml", "kill-run-pod.yaml", "delete-run-job.yaml", "kill-step-pod.yaml",
                       "restart-dependency.yaml", "stop-dependency.yaml", "pause-apiserver.yaml", "roll-daemon.yaml"):
        config = experiment_defaults(experiment)
        assert (config["webserver_service"], config["webserver_port"]) == (names.WEBSERVER, s.WEBSERVER_PORT)
    assert experiment_defaults("kill-webserver.yaml")["webserver_selector"] == names.WEBSERVER_SELECTOR
    assert experiment_defaults("kill-daemon.yaml")["daemon_selector"] == names.DAEMON_SELECTOR
    assert experiment_defaults("kill-code-location.yaml")["location_selector"] == (
        f"{names.CODE_LOCATIONS_SELECTOR},{names.LOCATION_LABEL}=alpha")
    every = experiment_defaults("kill-control-plane.yaml")
    assert (every["webserver_selector"], every["daemon_selector"], every["locations_selector"]) == (
        names.WEBSERVER_SELECTOR, names.DAEMON_SELECTOR, names.CODE_LOCATIONS_SELECTOR)
    workers = experiment_defaults("kill-celery-worker.yaml")
    assert (workers["worker_selector"], workers["workers"]) == (names.CELERY_SELECTOR, names.CELERY_WORKERS)
    assert experiment_defaults("restart-dependency.yaml")["dependency_selector"] == names.selector(
        names.POSTGRESQL_COMPONENT)
    assert experiment_defaults("stop-dependency.yaml")["dependency"] == names.POSTGRES
    assert experiment_defaults("roll-daemon.yaml")["daemon"] == names.DAEMON


def test_the_outage_experiments_need_only_what_the_suites_pass() -> None:
    """C26/C28/C24 pass chaos_variables + the outage's own; C23 the apiserver's pids; C25 the daemon Deployment."""
    given = {"namespace", "webserver_service", "webserver_port", "recovery_timeout"}
    restart = outages.Outage("postgresql", names.POSTGRES, names.selector(names.POSTGRESQL_COMPONENT))
    stop = outages.Outage("redis", names.BROKER, names.selector(names.REDIS_COMPONENT), 45)
    for outage in (restart, stop):
        assert referenced(outage.experiment) <= given | set(outage.variables())
    assert stop.variables() == {"dependency": names.BROKER, "outage_seconds": 45}
    assert restart.variables() == {"dependency_selector": names.selector(names.POSTGRESQL_COMPONENT)}
    assert referenced("pause-apiserver.yaml") <= given | {"pids", "outage_seconds"}
    assert referenced("roll-daemon.yaml") <= given | {"daemon"}
