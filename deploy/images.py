"""The images a deployment runs, built from Debian and PyPI packages and loaded into the cluster."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from deploy import object_store
from deploy.settings import (
    LOCATION_ENV,
    PLAIN_ENV,
    TEST_ENV_CONFIG_MAP,
    TEST_ENV_SECRET,
    CodeLocation,
    Images,
    location_secret,
)
from images import dagster as dagster_images

# Two locations with different code, so each gets its own image (C11: runs never mix them up).
LOCATION_NAMES = ("alpha", "beta")

LoadImage = Callable[[str, Path], str]


class SuiteImages(NamedTuple):
    """Each image a deployment of the suite loads: (reference, archive) pairs."""

    dagster: tuple[str, Path]
    postgres: tuple[str, Path]
    broker: tuple[str, Path] | None
    locations: list[tuple[str, tuple[str, Path]]]
    object_store: tuple[str, Path] | None = None


def build_images(dagster_version: str, celery: bool, store: bool = False) -> SuiteImages:
    """Build (or take from the cache) every image of a deployment; the broker's only for Celery, the object
    store's only for compute logs across nodes."""
    return SuiteImages(
        dagster=dagster_images.dagster_image(dagster_version), postgres=dagster_images.postgres_image(),
        broker=dagster_images.redis_image() if celery else None,
        locations=[(name, dagster_images.sample_location_image(name, dagster_version)) for name in LOCATION_NAMES],
        object_store=object_store.image() if store else None)


def build_and_load(load: LoadImage, dagster_version: str, celery: bool,
                   store: bool = False) -> tuple[Images, list[tuple[str, str]]]:
    """Build (or take from the cache) and load every image; returns the images and (location, image) pairs."""
    built = build_images(dagster_version, celery, store)
    images = Images(dagster=load(*built.dagster), postgres=load(*built.postgres),
                    broker=load(*built.broker) if built.broker else None,
                    object_store=load(*built.object_store) if built.object_store else None)
    return images, [(name, load(*image)) for name, image in built.locations]


def code_locations(
    locations: list[tuple[str, str]], env: tuple[tuple[str, str], ...] = (PLAIN_ENV,),
    env_config_maps: tuple[str, ...] = (TEST_ENV_CONFIG_MAP,), env_secrets: tuple[str, ...] = (TEST_ENV_SECRET,),
) -> tuple[CodeLocation, ...]:
    """The suite's code locations, each passing a plain env var, a ConfigMap, a shared Secret and a Secret of its
    own to its runs."""
    return tuple(
        CodeLocation(name=name, image=image,
                     python_file=f"{dagster_images.DAGSTER_APP}/{name}/definitions.py",
                     env=(*env, (LOCATION_ENV, name)), env_config_maps=env_config_maps,
                     env_secrets=(*env_secrets, location_secret(name)))
        for name, image in locations)
