"""Shared pytest fixtures: the base image the tests run against, and a check that no container leaks."""

from __future__ import annotations

import os

import pytest

from cligym_env.errors import DockerUnavailableError, ImageNotFoundError
from cligym_env.runtime import containers
from cligym_env.runtime.base import ensure_base_image


@pytest.fixture(scope="session")
def base_image() -> str:
    """The base image the tests run against: `CLIGYM_TEST_IMAGE` if set, else the project's own base image,
    built offline (debootstrap) on first use and cached after that."""
    image = os.environ.get("CLIGYM_TEST_IMAGE")
    if image:
        try:
            containers.require_image(image)
        except ImageNotFoundError as e:
            pytest.fail(str(e), pytrace=False)
        return image
    return ensure_base_image()


@pytest.fixture(scope="session", autouse=True)
def no_leaked_containers():
    """Fail the run if its tests left containers labelled cligym.managed behind, and remove them.

    Only this process's containers count (label cligym.process): other runs may share the daemon.
    """
    yield
    mine = {containers.PROCESS_LABEL: containers.PROCESS_ID}
    try:
        client = containers.docker_client()
    except DockerUnavailableError:  # tests that need Docker have failed on their own
        return
    filters = {"label": [containers.LABEL, f"{containers.PROCESS_LABEL}={containers.PROCESS_ID}"]}
    leaked = [
        (c.attrs.get("Names") or [c.short_id])[0].lstrip("/")
        for c in client.containers.list(all=True, filters=filters, sparse=True)
    ]
    containers.gc(client, labels=mine)
    assert not leaked, f"tests leaked containers labelled {containers.LABEL}: {', '.join(leaked)}"
