"""Make the image of `FROM base` + one `RUN` without `docker commit`: run the command, diff, load the layer.

On a storage driver without native diffs (fuse-overlayfs, vfs) `docker build` commits a layer by walking the
whole image twice through the driver, seconds per commit however small the change. Here the change is found
by listing the container's file system before and after the command (one `find`, well under a second), the
changed entries are fetched with Docker's archive API and packed as an image layer (deleted entries become
`.wh.` whiteouts), and the image (the base's config, one more layer) goes in with `docker load`, which keeps
the base's layers as they are. The command runs as `docker build` runs a `RUN`: the base's shell, user,
environment and working directory, the default capabilities, no network.

What the listing cannot capture faithfully (device nodes, sockets, FIFOs, a change too large to be worth it,
a command that broke `find` itself) or a failed `docker load` makes `run_as_layer` return None, and the caller
builds with `docker build` instead. Tests compare both ways on the same commands.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone

import docker.errors

from cligym_env.runtime.containers import docker_client, ownership_labels, remove_container
from cligym_env.runtime.images import BuildError

# Docker bind-mounts these into every container (RUN steps included) and never commits them.
MOUNTED = ("/etc/hosts", "/etc/hostname", "/etc/resolv.conf", "/sbin/docker-init", "/usr/sbin/docker-init")
# type, octal mode, uid, gid, size, mtime, ctime, link target, path; NUL-separated records.
LISTING = (
    r"find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o "
    r"-printf '%y\t%m\t%U\t%G\t%s\t%T@\t%C@\t%l\t%p\0'"
)
MAX_FILES = 200
"""More changed regular files than this: `docker build` is as quick (each file is one archive request)."""


@dataclass(frozen=True)
class Entry:
    kind: str  # find's %y: f regular, d directory, l symlink, others unsupported
    mode: int
    uid: int
    gid: int
    size: int
    mtime: float
    ctime: float
    link: str


def run_as_layer(base_image: str, command: str, tag: str, *, timeout: float = 600.0) -> str | None:
    """Run `command` as a `RUN` on `base_image` and load the result as image `tag`; None if not capturable.

    Raises BuildError (like a failed `docker build` step) if the command exits non-zero.
    """
    client = docker_client()
    base = client.images.get(base_image).attrs
    config = base.get("Config") or {}
    shell = config.get("Shell") or ["/bin/sh", "-c"]
    container = client.containers.run(
        base_image,
        ["sleep", "infinity"],
        detach=True,
        init=True,
        network_mode="none",
        user="0",
        labels=ownership_labels(),
    )
    try:
        before = _listing(container)
        if before is None:
            return None
        started = time.time()
        # `timeout` (coreutils, intact before the command) only so that a hung command cannot hold a worker.
        result = container.exec_run(
            ["timeout", "-s", "KILL", str(int(timeout)), *shell, command],
            user=config.get("User") or "",
            workdir=config.get("WorkingDir") or None,
        )
        if result.exit_code != 0:
            tail = (result.output or b"").decode("utf-8", "replace")[-800:]
            raise BuildError(f"broken image: RUN exited {result.exit_code}: {tail.strip()}")
        after = _listing(container)
        layer = _layer(container, before, after) if after is not None else None
        if layer is None or not _load(base, layer, command, tag, started):
            return None
        return tag
    finally:
        remove_container(container)


def _listing(container) -> dict[str, Entry] | None:
    """Every entry of the container's root file system; None if `find` cannot run (the command broke it)."""
    result = container.exec_run(["/bin/sh", "-c", LISTING], user="0")
    if result.exit_code != 0:
        return None
    entries: dict[str, Entry] = {}
    for record in result.output.split(b"\0"):
        if not record:
            continue
        fields = record.decode("utf-8", "surrogateescape").split("\t", 8)
        if len(fields) != 9:  # find printed something else (the command broke it): `docker build` instead
            return None
        kind, mode, uid, gid, size, mtime, ctime, link, path = fields
        if path in MOUNTED or path == "/":
            continue
        entries[path] = Entry(
            kind, int(mode, 8), int(uid), int(gid), int(size), float(mtime), float(ctime), link
        )
    return entries


def changes(before: dict[str, Entry], after: dict[str, Entry]) -> tuple[list[str], list[str]]:
    """(added or changed paths, deleted paths to white out), parents first.

    A deleted entry is whited out only where its parent is still the same directory: under a deleted one,
    or one replaced by a file, it is gone with its parent.
    """
    changed = {p for p, e in after.items() if before.get(p) != e}
    # A layer that names a file but not its folders makes the daemon create them with the load's time: every
    # ancestor goes in with its own metadata, so an unchanged folder stays as it was.
    for path in list(changed):
        parent = path.rsplit("/", 1)[0]
        while parent and parent not in changed and parent in after:
            changed.add(parent)
            parent = parent.rsplit("/", 1)[0]
    changed = sorted(changed)

    def kept_dir(path: str) -> bool:
        return path == "/" or (before[path].kind == "d" and path in after and after[path].kind == "d")

    deleted = [p for p in sorted(set(before) - set(after)) if kept_dir(p.rsplit("/", 1)[0] or "/")]
    return changed, deleted


def _layer(container, before: dict[str, Entry], after: dict[str, Entry]) -> bytes | None:
    changed, deleted = changes(before, after)  # (sub-second mtimes: a PAX header keeps them)
    if any(after[p].kind not in "fdl" for p in changed):
        return None
    if sum(after[p].kind == "f" for p in changed) > MAX_FILES:
        return None
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in deleted:
            parent, name = path.rsplit("/", 1)
            info = tarfile.TarInfo(f"{parent.lstrip('/')}/.wh.{name}".lstrip("/"))
            info.mode = 0o644
            tar.addfile(info)
        for path in changed:
            entry = after[path]
            if entry.kind == "f":
                info, data = _fetch(container, path)
                tar.addfile(info, io.BytesIO(data))
                continue
            info = tarfile.TarInfo(path.lstrip("/"))
            info.type = tarfile.DIRTYPE if entry.kind == "d" else tarfile.SYMTYPE
            info.linkname = entry.link
            info.mode, info.uid, info.gid, info.mtime = entry.mode, entry.uid, entry.gid, entry.mtime
            tar.addfile(info)
    return buf.getvalue()


def _fetch(container, path: str) -> tuple[tarfile.TarInfo, bytes]:
    """One regular file as Docker archives it (mode, owner, times, xattrs), renamed to its full path."""
    stream, _stat = container.get_archive(path)
    with tarfile.open(fileobj=io.BytesIO(b"".join(stream)), mode="r|") as archive:
        for member in archive:
            if member.isfile():
                data = archive.extractfile(member).read()
                member.name = path.lstrip("/")
                return member, data
    raise BuildError(f"broken image: {path} did not come back as a regular file")


def _load(base: dict, layer: bytes, command: str, tag: str, started: float) -> bool:
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    created = datetime.fromtimestamp(started, timezone.utc).isoformat().replace("+00:00", "Z")
    config = {
        "architecture": base.get("Architecture", "amd64"),
        "os": base.get("Os", "linux"),
        "created": created,
        "config": base.get("Config") or {},
        "rootfs": {"type": "layers", "diff_ids": [*base["RootFS"]["Layers"], diff_id]},
        "history": [{"created": created, "created_by": f"/bin/sh -c {command}"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    # docker load skips a layer it already has (matched by chain id) without opening its file.
    layers = [f"base/{i}/layer.tar" for i in range(len(base["RootFS"]["Layers"]))] + ["new/layer.tar"]
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": layers}]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, data in (
            ("manifest.json", json.dumps(manifest).encode()),
            (config_name, config_bytes),
            ("new/layer.tar", layer),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    try:
        docker_client().images.load(out.getvalue())
    except docker.errors.APIError:
        return False  # e.g. a daemon-side race on a layer: `docker build` is the way round
    return True
