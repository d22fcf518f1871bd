"""Kubernetes objects labelled as the chart labels them (deploy/names.py), plus the suite's own label, as plain
dicts: the skeletons deploy/manifests.py and deploy/postgres_manifests.py fill in."""

from __future__ import annotations

from typing import Any

from deploy import names
from deploy.settings import MANAGED_LABEL

Manifest = dict[str, Any]


def labels(component: str, **extra: str) -> dict[str, str]:
    """The chart's labels, plus ours so that teardown and evidence collection find every object."""
    return {**names.chart_labels(component), MANAGED_LABEL: "dkc", **extra}


def meta(name: str, namespace: str, component: str, **extra: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": labels(component, **extra)}


def deployment(name: str, namespace: str, component: str, pod_spec: dict[str, Any], replicas: int = 1,
               strategy: str = "RollingUpdate", annotations: dict[str, str] | None = None, **extra: str) -> Manifest:
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta(name, namespace, component, **extra),
        "spec": {"replicas": replicas, "strategy": {"type": strategy},
                 "selector": {"matchLabels": names.chart_labels(component, **extra)},
                 "template": {"metadata": {"labels": labels(component, **extra), "annotations": annotations or {}},
                              "spec": pod_spec}},
    }


def service(name: str, namespace: str, component: str, port: int, target: int, **extra: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta(name, namespace, component, **extra),
            "spec": {"selector": names.chart_labels(component, **extra),
                     "ports": [{"name": "http", "port": port, "targetPort": target}]}}


def config_map(name: str, namespace: str, component: str, data: dict[str, str]) -> Manifest:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta(name, namespace, component), "data": data}
