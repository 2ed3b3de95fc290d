"""What the harness compares an episode's container with: facts read once from pristine images, cached on disk.

- the project tree (the workdir) of the task image, as a tar archive, to restore what an episode changed;
- content hashes of files in the gold image, to tell a repair (a file back to the gold's bytes) from tampering;
- the login environment of the gold and of the task image (the healthy and the broken values of variables).

Every fact is keyed by the image id, so a rebuilt image never reuses a stale one.
"""

from __future__ import annotations

import json
import os
import tarfile
import threading
from functools import lru_cache
from pathlib import Path

from cligym_env.runtime import cache
from cligym_env.runtime.containers import (
    docker_client,
    ownership_labels,
    remove_container,
    start_container,
)
from cligym_env.runtime.toolkit import HarnessError, run_tool
from cligym_env.testing.login import LoginEnvironment, capture_login_environment

HASH_BATCH = 2000
# sha256 of each argument's content (following links), or "-" when it cannot be read; one line each.
HASH_SCRIPT = r"""
for f in "$@"; do
  h=$(sha256sum < "$f" 2>/dev/null | cut -c1-64)
  m=$(head -c 4 "$f" 2>/dev/null | od -An -tx1 | tr -d ' \n')
  printf '%s %s %s\n' "${h:--}" "${m:--}" "$f"
done
"""


def image_id(image: str) -> str:
    return docker_client().images.get(image).id.split(":")[-1][:16]


def _store(kind: str, image: str) -> Path:
    return cache.cache_dir("harness", kind) / f"{image_id(image)}.json"


def _save(store: Path, data) -> None:
    """Write `data` as JSON to `store` atomically (a temp file per process and thread, then a rename)."""
    tmp = store.with_name(f".{store.name}.{os.getpid()}.{threading.get_ident()}")
    tmp.write_text(json.dumps(data))
    tmp.replace(store)


def hash_files(container, paths: list[str]) -> dict[str, tuple[str | None, str]]:
    """path -> (sha256 of its content or None, its first 4 bytes as hex) in a running container."""
    out: dict[str, tuple[str | None, str]] = {}
    for start in range(0, len(paths), HASH_BATCH):
        batch = paths[start : start + HASH_BATCH]
        result = run_tool(container, HASH_SCRIPT, timeout=300, limit=64 << 20, args=batch)
        if result.exit_code != 0:
            raise HarnessError(f"hashing changed files failed (exit code {result.exit_code})")
        for line in result.output.decode("utf-8", errors="replace").splitlines():
            digest, _, rest = line.partition(" ")
            magic, _, path = rest.partition(" ")
            out[path] = (None if digest == "-" else digest, magic)
    return out


def gold_hashes(gold_image: str, paths: list[str]) -> dict[str, str | None]:
    """sha256 of each path's content in `gold_image` (None: no such file there); cached per image."""
    store = _store("gold-hashes", gold_image)
    known: dict[str, str | None] = json.loads(store.read_text()) if store.is_file() else {}
    missing = [p for p in paths if p not in known]
    if missing:
        container = start_container(gold_image)
        try:
            for path, (digest, _) in hash_files(container, missing).items():
                known[path] = digest
        finally:
            remove_container(container)
        _save(store, known)
    return {p: known.get(p) for p in paths}


def login_environment(image: str, workdir: str) -> LoginEnvironment:
    """The login environment a fresh container of `image` gives; cached per image."""
    store = _store("login", image)
    if store.is_file():
        return LoginEnvironment.from_json(json.loads(store.read_text()))
    container = start_container(image, workdir=workdir)
    try:
        env = capture_login_environment(container, workdir)
    finally:
        remove_container(container)
    _save(store, env.to_json())
    return env


@lru_cache(maxsize=64)
def workdir_archive(image: str, workdir: str) -> Path:
    """A tar archive of `workdir` as it is in `image` (made once per image, from a created container)."""
    folder = cache.cache_dir("harness", "workdir")
    path = folder / f"{image_id(image)}.tar"
    if path.is_file():
        return path
    container = docker_client().containers.create(image, ["true"], labels=ownership_labels())
    try:
        stream, _ = container.get_archive(workdir)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        with tmp.open("wb") as f:
            for chunk in stream:
                f.write(chunk)
        with tarfile.open(tmp) as tar:  # readable, or the next call retries
            tar.getmembers()
        tmp.replace(path)
    finally:
        remove_container(container)
    return path
