"""chaostoolkit extension for Dagster on Kubernetes: probes that ask a Dagster webserver over GraphQL.

Reached through the apiserver's service proxy with the kubeconfig in ``KUBECONFIG`` (or ~/.kube/config)
and its current context, like chaostoolkit-kubernetes.
"""
