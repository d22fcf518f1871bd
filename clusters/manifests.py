"""Create Kubernetes objects from YAML documents, tolerating ones that already exist."""

from __future__ import annotations

from string import Template
from typing import Any

import yaml
from kubernetes import client, utils


def render(template_text: str, **values: str) -> list[dict[str, Any]]:
    """Substitute ``${NAME}`` placeholders and split into documents (missing values are an error)."""
    return [doc for doc in yaml.safe_load_all(Template(template_text).substitute(values)) if doc]


def apply(api: client.ApiClient, documents: list[dict[str, Any]], namespace: str | None = None) -> list[str]:
    """Create each object; an object that already exists is left as it is. Returns ``Kind/name`` created."""
    created = []
    for document in documents:
        try:
            utils.create_from_dict(api, document, namespace=namespace)
        except utils.FailToCreateError as exc:
            if any(getattr(e, "status", None) != 409 for e in exc.api_exceptions):
                raise
            continue
        created.append(f"{document['kind']}/{document['metadata']['name']}")
    return created
