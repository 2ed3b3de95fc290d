"""A `crate:` gold's build context: the crate from crates.io in `src/` (with a Cargo.lock old cargo reads)
and its dependencies, dev-dependencies included, vendored into `vendor/` on the host.

The image builds and tests with Debian bookworm's cargo (rustc 1.63), offline: the lock file is resolved
on the host as if the crate declared `rust-version = "1.63"`, so dependencies stay within reach.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from cligym_env.errors import BuildError
from cligym_env.gold import GoldSpec
from cligym_env.golds.fetch import download
from cligym_env.runtime.cache import cache_dir
from cligym_env.runtime.pypi import unpack_sdist

CRATES_URL = "https://static.crates.io/crates/{name}/{name}-{version}.crate"
IMAGE_RUST_VERSION = "1.63"  # Debian bookworm's rustc
IMAGE_LOCKFILE_VERSION = 3  # the newest Cargo.lock format cargo 0.66 reads


def fetch_crate(name: str, version: str, dest: Path) -> Path:
    """Download `name-version.crate` into `dest` (cached: an existing file is reused)."""
    return download(CRATES_URL.format(name=name, version=version), dest / f"{name}-{version}.crate")


def add_crate_source(spec: GoldSpec, context: Path, say: Callable[[str], None]) -> None:
    """Unpack the crate into `context/src` and vendor its dependencies into `context/vendor`."""
    name, version = spec.source.pin
    say(f"{spec.name}: fetching crate {name}=={version}")
    crate = fetch_crate(name, version, cache_dir("downloads", "crates"))
    unpack_sdist(crate, context / "src")
    say(f"{spec.name}: resolving and vendoring dependencies with the host's cargo")
    lock = vendor_dependencies(context / "src", context / "vendor")
    (context / "src" / "Cargo.lock").write_text(lock)


def vendor_dependencies(project: Path, vendor: Path) -> str:
    """`cargo vendor` the project's dependencies into `vendor`; returns the Cargo.lock the image uses.

    Works on a scratch copy: the copy's manifest gets `rust-version` so the resolver picks versions the
    image's rustc builds; the project itself is not changed.
    """
    if shutil.which("cargo") is None:
        raise BuildError("cargo is not on this machine: `crate:` golds vendor their dependencies on the host")
    with tempfile.TemporaryDirectory(prefix="cligym-crate-") as tmp:
        work = Path(tmp) / "work"
        shutil.copytree(project, work)
        manifest = work / "Cargo.toml"
        text = manifest.read_text()
        if not re.search(r"(?m)^rust-version\s*=", text):
            text = re.sub(
                r"(?m)^\[package\]\s*$", f'[package]\nrust-version = "{IMAGE_RUST_VERSION}"', text, count=1
            )
            manifest.write_text(text)
        env = os.environ | {"CARGO_RESOLVER_INCOMPATIBLE_RUST_VERSIONS": "fallback"}
        if not (work / "Cargo.lock").exists():
            _cargo(["generate-lockfile"], work, env)
        vendor.mkdir(parents=True, exist_ok=True)
        _cargo(["vendor", "--locked", str(vendor)], work, env)
        lock = (work / "Cargo.lock").read_text()
    return re.sub(r"(?m)^version = \d+$", f"version = {IMAGE_LOCKFILE_VERSION}", lock, count=1)


def _cargo(args: list[str], cwd: Path, env: dict[str, str]) -> None:
    result = subprocess.run(["cargo", *args], cwd=cwd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-12:])
        raise BuildError(f"cargo {args[0]} in {cwd} failed (exit {result.returncode}):\n{tail}")
