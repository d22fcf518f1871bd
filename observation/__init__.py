"""Watching what the cluster and Dagster do: waits, pod and job observations."""
