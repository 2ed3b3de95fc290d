"""Has anything under the project's source tree changed? Checked cheaply inside the container.

Inversion must break the environment, never the project's own files. `docker diff` answers that, but on a
daemon whose storage driver has no native diff (fuse-overlayfs here, the vfs driver) it walks the whole image
through the mount: about 10 s per call on a gold image, longer than most test suites. `SourceGuard` instead
lists every entry under the workdir with its type, mode, owner, size, mtime and ctime (ctime cannot be set
from user space, so a content or metadata change cannot hide) before and after the commands, in well under a
second. When that listing cannot be taken (the commands broke `find` or the shell itself), it falls back to
`docker diff`, which needs nothing from inside the container.
"""

from __future__ import annotations

from docker.models.containers import Container

from cligym_env.runtime.containers import exec_once

_END = "cligym-manifest-end"
_LIST = (
    "cd {workdir} 2>/dev/null && find . -name __pycache__ -prune -o "
    "-printf 'M %y %m %U:%G %s %T@ %C@ %l\\t%p\\n' && echo " + _END
)


def source_manifest(container: Container, workdir: str) -> dict[str, str] | None:
    """Path -> metadata for every entry under `workdir` but `__pycache__`; None if it could not be listed."""
    # A listing is ~100 bytes an entry: room for 600,000 entries; a longer one (truncated) counts as none.
    result = exec_once(
        container, _LIST.format(workdir=workdir), timeout=120, workdir="/", output_cap=64 << 20
    )
    if result.exit_code != 0 or result.truncated or not result.output.rstrip().endswith(_END):
        return None
    manifest = {}
    for line in result.output.splitlines():
        if line.startswith("M ") and "\t" in line:
            meta, path = line[2:].split("\t", 1)
            manifest[workdir.rstrip("/") + path[1:]] = meta
    return manifest


def docker_diff_paths(container: Container, workdir: str) -> set[str]:
    """Paths under `workdir` that `docker diff` reports as added, changed or deleted (but `__pycache__`)."""
    prefix = workdir.rstrip("/") + "/"
    changes = container.diff() or []
    return {
        c["Path"] for c in changes if (c["Path"] + "/").startswith(prefix) and "__pycache__" not in c["Path"]
    }


class SourceGuard:
    """Snapshot the source tree, run commands, ask what they changed: `changes()` lists the paths."""

    def __init__(self, container: Container, workdir: str):
        self.container, self.workdir = container, workdir
        self.snapshot()

    def snapshot(self) -> None:
        """Take the reference state (e.g. again after tests ran: what the tests write is theirs)."""
        self._manifest = source_manifest(self.container, self.workdir)
        self._diff_base = docker_diff_paths(self.container, self.workdir) if self._manifest is None else None

    def changes(self) -> list[str]:
        """Paths added, removed or changed since the snapshot."""
        after = source_manifest(self.container, self.workdir) if self._manifest is not None else None
        if after is None:
            # No listing: docker diff, less what it showed at the snapshot (nothing if the listing worked then).
            return sorted(docker_diff_paths(self.container, self.workdir) - (self._diff_base or set()))
        before = self._manifest
        return sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
