"""Image layers between the base and a gold: a shared language runtime (`cligym/runtime-rust:<hash>`) and a
gold's own extra Debian packages, both made of .debs downloaded on the host and installed offline.

The host's apt resolves exactly the packages the parent image lacks (its dpkg status file, read from the
image, stands in for the host's); the debs join the image's offline repository (`/opt/debs`), so a repair
can reinstall them with networking off.

    >>> runtime_image("rust", "cligym/base:bookworm-63aa572395")   # doctest: +SKIP
    'cligym/runtime-rust:4f1c2a9b0e7d'
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cligym_env.errors import BuildError
from cligym_env.runtime.base import DEFAULT_SUITE, OFFLINE_DEBS, debian_mirror, write_packages_index
from cligym_env.runtime.cache import cache_dir
from cligym_env.runtime.containers import docker_client, ownership_labels, read_file
from cligym_env.runtime.images import IMAGE_LABEL, build_image, content_hash, image_exists

LAYER_RECIPE = "deb-layer-1"  # bump when the layer Dockerfile changes, so every layer is rebuilt
ARCHIVE_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
_CARGO_CONFIG = (
    '[source.crates-io]\\nreplace-with = "vendored-sources"\\n\\n'
    '[source.vendored-sources]\\ndirectory = "/opt/cargo-vendor"\\n\\n[net]\\noffline = true\\n'
)
# Language runtimes: the Debian packages of each, and Dockerfile lines run after they are installed.
RUNTIMES: dict[str, tuple[tuple[str, ...], str]] = {
    # Debian's cargo reads crates only from /opt/cargo-vendor (filled per gold by `cargo vendor` on the host).
    "rust": (
        ("cargo", "rustc"),
        f"RUN mkdir -p /opt/cargo /opt/cargo-vendor && printf '{_CARGO_CONFIG}' > /opt/cargo/config.toml\n"
        "ENV CARGO_HOME=/opt/cargo\n",
    ),
}

Progress = Callable[[str], None]


def runtime_image(name: str, base: str, progress: Progress | None = None) -> str:
    """The language runtime layer `name` (see RUNTIMES) on top of `base`, built first if missing."""
    if name not in RUNTIMES:
        raise BuildError(f"unknown runtime '{name}' (known: {', '.join(RUNTIMES)})")
    packages, extra = RUNTIMES[name]
    return deb_layer(base, packages, f"cligym/runtime-{name}", extra=extra, kind="runtime", progress=progress)


def deb_layer(
    parent: str,
    packages: tuple[str, ...] | list[str],
    repo: str,
    *,
    extra: str = "",
    kind: str = "layer",
    progress: Progress | None = None,
) -> str:
    """`repo:<hash>`: `parent` plus `packages` installed from debs fetched on the host (and `extra` lines).

    The hash covers the parent image, the package names and the recipe, so an unchanged layer is reused.
    """
    tag = content_hash([], parent, *sorted(packages), extra, LAYER_RECIPE)
    image = f"{repo}:{tag}"
    if image_exists(image):
        return image
    say = progress or (lambda _msg: None)
    with tempfile.TemporaryDirectory(prefix="cligym-layer-") as tmp:
        context = Path(tmp)
        debs = context / "debs"
        say(f"{repo}: resolving {' '.join(packages)} against {parent}")
        downloaded = download_missing_debs(parent, list(packages), debs)
        if downloaded:
            previous = (read_image_file(parent, f"{OFFLINE_DEBS}/Packages") or b"").decode()
            write_packages_index(debs, previous=previous)
        else:
            debs.mkdir(parents=True, exist_ok=True)
        (context / "Dockerfile").write_text(_layer_dockerfile(packages, bool(downloaded), extra))
        say(f"{repo}: building from {len(downloaded)} debs")
        build_image(
            context,
            image,
            buildargs={"CLIGYM_BASE": parent},
            labels={IMAGE_LABEL: kind},
            progress=progress,
            what=f"layer {repo}",
        )
    return image


def _layer_dockerfile(packages: tuple[str, ...] | list[str], has_debs: bool, extra: str) -> str:
    lines = ["ARG CLIGYM_BASE", "FROM ${CLIGYM_BASE}"]
    if has_debs:  # the new index lists the parent's debs and these, so /opt/debs stays one repository
        lines += [
            f"COPY debs/ {OFFLINE_DEBS}/",
            "RUN apt-get update -q && apt-get install -y -q --no-install-recommends "
            + " ".join(packages)
            + " && apt-get clean",
        ]
    return "\n".join(lines) + "\n" + extra


def download_missing_debs(parent: str, packages: list[str], dest: Path) -> list[Path]:
    """Download into `dest` the debs that installing `packages` in `parent` needs, and nothing more.

    Runs the host's apt-get with the image's dpkg status file and a private package list of the base's
    Debian suite (refreshed daily), so the versions match what the base was bootstrapped from.
    """
    status = read_image_file(parent, "/var/lib/dpkg/status")
    if status is None:
        raise BuildError(f"{parent} has no /var/lib/dpkg/status: is it a cligym base image?")
    if shutil.which("apt-get") is None:
        raise BuildError("apt-get is not on this machine: layers with Debian packages need a Debian host")
    options = _apt_options()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="cligym-apt-") as tmp:
        (Path(tmp) / "status").write_bytes(status)
        archives = Path(tmp) / "archives"
        (archives / "partial").mkdir(parents=True)
        command = [
            "apt-get", "install", "--download-only", "-y", "-q", *options,
            "-o", f"Dir::State::status={tmp}/status", "-o", f"Dir::Cache::archives={archives}",
            "-o", "APT::Install-Recommends=false", *packages,
        ]  # fmt: skip
        _run(command, f"resolving debs {' '.join(packages)}")
        found = sorted(archives.glob("*.deb"))
        for deb in found:
            shutil.move(deb, dest / deb.name)
    return sorted(dest.glob("*.deb"))


def _apt_options() -> list[str]:
    """apt-get options for a private view of the base's suite (own sources, lists and cache, no locks)."""
    root = cache_dir("apt")
    lists = root / "lists"
    (lists / "partial").mkdir(parents=True, exist_ok=True)
    sources = root / "sources.list"
    sources.write_text(f"deb [signed-by={ARCHIVE_KEYRING}] {debian_mirror()} {DEFAULT_SUITE} main\n")
    options = [
        "-o", f"Dir::Etc::sourcelist={sources}", "-o", "Dir::Etc::sourceparts=-",
        "-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={root}", "-o", "Debug::NoLocking=1",
    ]  # fmt: skip
    stamp = root / "updated"
    if not stamp.exists() or time.time() - stamp.stat().st_mtime > 86400:
        _run(["apt-get", "update", "-q", *options], f"apt-get update of {DEFAULT_SUITE}")
        stamp.write_text(time.strftime("%Y-%m-%dT%H:%M:%S\n"))
    return options


def read_image_file(image: str, path: str) -> bytes | None:
    """The file at `path` in `image` (None if absent), read from a created, never started container."""
    container = docker_client().containers.create(
        image, ["true"], labels=ownership_labels(), network_disabled=True
    )
    try:
        return read_file(container, path)
    finally:
        container.remove(force=True)


def _run(command: list[str], what: str) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-12:])
        raise BuildError(f"{what} failed (exit {result.returncode}):\n{tail}")
