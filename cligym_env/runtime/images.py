"""Image builds from a prepared build context, tagged by content hash so unchanged inputs are not rebuilt."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path

import docker.errors

from cligym_env.errors import BuildError, ImageNotFoundError
from cligym_env.runtime.containers import docker_client

# Base, layer and gold images carry {IMAGE_LABEL: <kind>}; task images do not (a label is one more layer
# commit per build) and are known by their repository, `cligym/task-<id>`.
IMAGE_LABEL = "cligym.image"


def content_hash(paths: Iterable[Path], *extra: str, length: int = 12) -> str:
    """Stable hash of files (walked in sorted order, names relative to each root) and extra strings."""
    digest = hashlib.sha256()
    for root in paths:
        root = Path(root)
        files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in files:
            rel = path.relative_to(root).as_posix() if root.is_dir() else path.name
            if "__pycache__" in rel or rel.startswith(".") or rel.endswith(".pyc"):
                continue
            digest.update(rel.encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    for item in extra:
        digest.update(item.encode() + b"\0")
    return digest.hexdigest()[:length]


def image_exists(name: str) -> bool:
    """True if `name` (repo:tag or id) is present locally."""
    try:
        docker_client().images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def image_size_mb(name: str) -> float:
    """The image's size on disk in MB (shared layers counted in full)."""
    try:
        return round(docker_client().images.get(name).attrs["Size"] / 1e6, 1)
    except docker.errors.ImageNotFound:
        raise ImageNotFoundError(f"image '{name}' not found") from None


# Daemon-side races seen when builds and image removals run concurrently on one daemon; the build itself was
# fine, and a second try succeeds.
TRANSIENT_BUILD_ERRORS = ("failed to get layer", "layer does not exist", "No such container")


def build_image(
    context: Path,
    tag: str,
    *,
    buildargs: dict[str, str] | None = None,
    labels: dict[str, str] | None = None,
    extra_tags: Iterable[str] = (),
    network: bool = False,
    progress: Callable[[str], None] | None = None,
    what: str = "image",
) -> str:
    """Build `context/Dockerfile` as `tag` (plus `extra_tags`) and return `tag`.

    The build runs with networking off unless `network`: everything it needs must be in the context.
    A failed step raises BuildError with the step and the last lines of its log; a daemon-side race (see
    `TRANSIENT_BUILD_ERRORS`) is retried once.
    """
    try:
        return _build_once(context, tag, buildargs, labels, extra_tags, network, progress, what)
    except BuildError as exc:
        if not any(marker in str(exc) for marker in TRANSIENT_BUILD_ERRORS):
            raise
        return _build_once(context, tag, buildargs, labels, extra_tags, network, progress, what)


def _build_once(context, tag, buildargs, labels, extra_tags, network, progress, what) -> str:
    api = docker_client().api
    log: list[str] = []
    try:
        stream = api.build(
            path=str(context),
            tag=tag,
            buildargs=buildargs or {},
            labels=labels or {},
            rm=True,
            forcerm=True,
            network_mode=None if network else "none",
            decode=True,
        )
        for chunk in stream:
            if "error" in chunk:
                tail = "".join(log[-25:]).rstrip()
                raise BuildError(f"building {what} {tag} failed: {chunk['error'].strip()}\n{tail}")
            line = chunk.get("stream") or ""
            if line:
                log.append(line)
                if progress and line.startswith("Step "):
                    progress(line.strip())
    except docker.errors.APIError as exc:
        raise BuildError(f"building {what} {tag} failed: {exc.explanation or exc}") from None
    image = docker_client().images.get(tag)
    for extra in extra_tags:
        repo, _, name = extra.rpartition(":")
        image.tag(repo, name)
    return tag
