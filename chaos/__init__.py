"""Faults and probes: chaostoolkit experiments (experiments/) and a Dagster extension (dagster/)."""
