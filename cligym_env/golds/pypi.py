"""A `pypi:` gold's build context: the unpacked sdist in `src/`, its wheel and dependencies in `wheelhouse/`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from cligym_env.gold import GoldSpec
from cligym_env.runtime.cache import cache_dir
from cligym_env.runtime.pypi import build_wheel, download_wheels, fetch_sdist, unpack_sdist


def add_pypi_source(spec: GoldSpec, context: Path, say: Callable[[str], None]) -> None:
    """Fetch the sdist, unpack it into `context/src`, build its wheel on the host (C extensions included)
    and download the wheels it and `spec.wheels` need into `context/wheelhouse`."""
    requirement = spec.source.pypi or ""
    say(f"{spec.name}: fetching sdist {requirement}")
    sdist = fetch_sdist(requirement, cache_dir("downloads", "sdists"))
    unpack_sdist(sdist, context / "src")
    say(f"{spec.name}: building wheel from {sdist.name}")
    wheel = build_wheel(sdist, cache_dir("downloads", "wheels"))
    wheelhouse = context / "wheelhouse"
    wheelhouse.mkdir()
    say(f"{spec.name}: downloading dependency wheels")
    download_wheels([str(wheel), *spec.wheels], wheelhouse)
    if not (wheelhouse / wheel.name).exists():
        shutil.copy2(wheel, wheelhouse / wheel.name)
