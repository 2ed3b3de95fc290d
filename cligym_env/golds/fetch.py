"""Downloads on the host, cached: a file already on disk is reused, a new one is written atomically."""

from __future__ import annotations

import hashlib
import urllib.request
from pathlib import Path

from cligym_env.errors import BuildError


def download(url: str, path: Path, *, sha256: str | None = None, timeout: float = 120) -> Path:
    """Fetch `url` into `path` unless it is there; with `sha256`, refuse data whose digest differs."""
    if path.exists():
        return path
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except OSError as exc:
        raise BuildError(f"downloading {url} failed: {exc}") from None
    if sha256 and hashlib.sha256(data).hexdigest() != sha256:
        raise BuildError(f"{url}: SHA-256 differs from the expected {sha256}")
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    partial.replace(path)
    return path
