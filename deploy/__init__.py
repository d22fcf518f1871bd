"""Bringing up a Dagster deployment on a cluster and talking to it once it is up."""
