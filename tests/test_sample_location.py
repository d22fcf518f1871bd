"""Self-tests for deploy.sample_location: the Helm values and kubectl lines that add the suite's sample code
locations to someone else's chart, and that discovery reads back what they say (no cluster)."""

from __future__ import annotations

import pytest
import yaml

from deploy import sample_location
from deploy import settings as s
from tests.chart_fakes import Cluster, discover_in, patched_cluster


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Cluster:
    return patched_cluster(monkeypatch)


def test_values_snippet_is_chart_values_for_the_sample_locations() -> None:
    text = sample_location.values_snippet([("alpha", "registry.example:5000/dkc/alpha:1.2"),
                                           ("beta", "registry.example:5000/dkc/beta:7")])
    deployments = yaml.safe_load(text)["dagster-user-deployments"]["deployments"]
    assert [dep["name"] for dep in deployments] == ["alpha", "beta"]
    alpha = deployments[0]
    assert alpha["image"] == {"repository": "registry.example:5000/dkc/alpha", "tag": "1.2",
                              "pullPolicy": "IfNotPresent"}
    assert alpha["dagsterApiGrpcArgs"] == ["-f", "/opt/dagster/app/alpha/definitions.py"]
    assert alpha["port"] == s.GRPC_PORT
    assert alpha["env"] == [{"name": s.PLAIN_ENV[0], "value": s.PLAIN_ENV[1]},
                            {"name": s.LOCATION_ENV, "value": "alpha"}]
    assert alpha["envConfigMaps"] == [{"name": s.TEST_ENV_CONFIG_MAP}]
    assert alpha["envSecrets"] == [{"name": s.TEST_ENV_SECRET}, {"name": "dkc-location-secret-alpha"}]
    assert deployments[1]["envSecrets"] == [{"name": s.TEST_ENV_SECRET}, {"name": "dkc-location-secret-beta"}]


def test_values_snippet_python_file_matches_what_discovery_reads(cluster: Cluster) -> None:
    snippet = yaml.safe_load(sample_location.values_snippet([("alpha", "r/alpha:1"), ("beta", "r/beta:1")]))
    files = {dep["name"]: dep["dagsterApiGrpcArgs"][1] for dep in snippet["dagster-user-deployments"]["deployments"]}
    assert {loc.name: loc.python_file for loc in discover_in(cluster).code_locations} == files


@pytest.mark.parametrize("image", ["registry.example:5000/dkc/alpha", "r/alpha@sha256:abc", "alpha"])
def test_values_snippet_needs_tagged_images(image: str) -> None:
    with pytest.raises(ValueError, match="needs a tag"):
        sample_location.values_snippet([("alpha", image)])


def test_secret_commands_create_labelled_objects_with_a_fresh_secret() -> None:
    text = sample_location.secret_commands("team dagster")
    lines = text.splitlines()
    assert all(line.startswith("kubectl -n 'team dagster' ") for line in lines)
    assert "create configmap dkc-test-env --from-literal=DKC_FROM_CONFIG_MAP=from-a-config-map" in lines[0]
    assert "create secret generic dkc-test-secret --from-literal=DKC_FROM_SECRET=dkc-secret-" in lines[2]
    assert lines[1].endswith("label configmap dkc-test-env dkc.dagster.io/managed-by=dkc")
    assert lines[3].endswith("label secret dkc-test-secret dkc.dagster.io/managed-by=dkc")
    assert sample_location.secret_commands("x") != sample_location.secret_commands("x"), "a new value each time"


def test_secret_commands_give_each_location_a_secret_of_its_own() -> None:
    lines = sample_location.secret_commands("dagster", secret_value="dkc-secret-abc").splitlines()
    for location in ("alpha", "beta"):
        value = s.location_secret_value("dkc-secret-abc", location)
        assert (f"kubectl -n dagster create secret generic dkc-location-secret-{location} "
                f"--from-literal=DKC_LOCATION_SECRET={value}") in lines
        assert (f"kubectl -n dagster label secret dkc-location-secret-{location} "
                "dkc.dagster.io/managed-by=dkc") in lines
    assert s.location_secret_value("dkc-secret-abc", "alpha") != s.location_secret_value("dkc-secret-abc", "beta")
    assert "dkc-secret-abc" not in s.location_secret_value("dkc-secret-abc", "alpha")
