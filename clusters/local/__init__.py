"""The ``local`` provider: upstream Kubernetes built from source, run on containerd in its own namespaces."""

from clusters.local.provider import LocalProvider

__all__ = ["LocalProvider"]
