"""Self-tests: a combination's tests share one xdist scope (one worker, one deployment); other tests are their own."""

from __future__ import annotations

from suites.scheduling import scope_of


def test_a_combinations_tests_share_its_scope_whatever_else_their_ids_say() -> None:
    assert scope_of("suites/test_ha.py::test_webserver[k8s-job]") == "k8s-job"
    assert scope_of("suites/test_dependency_outages.py::test_x[postgresql-stopped-celery-k8s]") == "celery-k8s"
    assert scope_of("suites/test_ha.py::test_webserver[k8s-multiprocess]@k8s-multiprocess") == "k8s-multiprocess"


def test_a_test_of_no_combination_is_a_scope_of_its_own() -> None:
    assert scope_of("suites/test_smoke.py::test_dns") == "suites/test_smoke.py::test_dns"
    assert scope_of("tests/test_waits.py::test_x[2]") == "tests/test_waits.py::test_x[2]"
