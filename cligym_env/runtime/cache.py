"""The per-user cache folder: downloads, build contexts, the base rootfs tarball."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """`$CLIGYM_CACHE` (default `~/.cache/cligym`) joined with `parts`, created if missing."""
    root = Path(os.environ.get("CLIGYM_CACHE") or Path.home() / ".cache" / "cligym")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
