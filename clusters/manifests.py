"""Apply Kubernetes objects from YAML documents with server-side apply: create or bring up to date."""

from __future__ import annotations

from string import Template
from typing import Any

import yaml
from kubernetes import client, dynamic

FIELD_MANAGER = "dkc"


def render(template_text: str, **values: str) -> list[dict[str, Any]]:
    """Substitute ``${NAME}`` placeholders and split into documents (missing values are an error)."""
    return [doc for doc in yaml.safe_load_all(Template(template_text).substitute(values)) if doc]


def apply(api: client.ApiClient, documents: list[dict[str, Any]], namespace: str | None = None) -> list[str]:
    """Server-side apply each object, so a kept deployment picks up changed settings. Returns ``Kind/name``."""
    dyn = dynamic.DynamicClient(api)
    applied = []
    for document in documents:
        resource = dyn.resources.get(api_version=document["apiVersion"], kind=document["kind"])
        target = document["metadata"].get("namespace", namespace) if resource.namespaced else None
        dyn.server_side_apply(resource, body=document, name=document["metadata"]["name"], namespace=target,
                              field_manager=FIELD_MANAGER, force_conflicts=True)
        applied.append(f"{document['kind']}/{document['metadata']['name']}")
    return applied
