"""Start, inspect and remove the containers cligym runs: locked down, labelled, cleaned up by `gc`.

Every container and network started here carries the label ``cligym.managed=1`` so that `gc` (and
`cligym gc`) can find and remove whatever a crash or an interrupt left behind, and labels naming the process
that started it, so that its watchdog (see `watchdog`) or `reap_orphans` removes it when that process ends.

Example:
    >>> c = start_container("cligym/base:test")
    >>> exec_once(c, "echo hi", timeout=10).output
    'hi\\n'
    >>> remove_container(c)
"""

from __future__ import annotations

import io
import os
import posixpath
import secrets
import selectors
import socket
import struct
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import docker
import docker.errors
import docker.types
import docker.utils
import requests.exceptions
from docker.models.containers import Container

from cligym_env.errors import CligymError, DockerUnavailableError, ImageNotFoundError
from cligym_env.runtime import toolkit, watchdog
from cligym_env.runtime.disk import DEFAULT_DISK, disk_usage  # noqa: F401 (containers.disk_usage is public)
from cligym_env.runtime.output import OutputCap

# Defined beside the watchdog, which removes containers without importing this module (see its docstring).
from cligym_env.runtime.watchdog import remove_container  # noqa: F401 (containers.remove_container is public)

LABEL = "cligym.managed"
# Which process started a container, so a process (e.g. a test run) can clean up only its own while others
# share the Docker daemon. Unique per process, even when processes share CLIGYM_PROCESS_ID.
PROCESS_LABEL = watchdog.PROCESS_LABEL
PROCESS_ID = secrets.token_hex(6)
# Which group of processes started it: a parent sets CLIGYM_PROCESS_ID for its children to clean up after
# them (`gc(labels={GROUP_LABEL: ...})`); without it a process is a group of its own.
GROUP_LABEL = "cligym.group"
GROUP_ID = os.environ.get("CLIGYM_PROCESS_ID") or PROCESS_ID
# Who owns it on this host, "hostname:pid:starttime" (see `watchdog.owner`), and in which pid namespace the
# pid counts: `reap_orphans` removes containers whose owner has ended.
OWNER_LABEL = "cligym.owner"
PIDNS_LABEL = "cligym.pidns"
# The container's disk limit in bytes, for whoever runs commands in it (see `ContainerSession`).
DISK_LABEL = "cligym.disk-limit"

# Linux capabilities a root user in the container keeps: chown/chmod any file (CHOWN, DAC_OVERRIDE, FOWNER,
# FSETID), switch users for su and apt's _apt sandbox (SETUID, SETGID), signal other users' processes (KILL).
# Enough for bash, pip, apt-get/dpkg from a local repository, chmod/chown and su; nothing touching the
# network stack, mounts, devices or the kernel.
CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL")

# Images cligym builds, by name prefix, and the command that builds each (named in "image not found").
_BUILD_HINTS = (("cligym/base", "cligym base build"), ("cligym/gold", "cligym gold build NAME"))

# Below the host's core count, so that a container running flat out (a test suite, a busy loop) leaves the
# host, and the harness that drives it, at least a quarter of its cores.
DEFAULT_CPUS = max(0.5, min(2.0, (os.cpu_count() or 1) * 0.75))


_client: docker.DockerClient | None = None
_storage_quota: bool | None = None  # whether the daemon takes storage_opt size; None until first tried


def _new_process_id() -> None:
    global PROCESS_ID
    PROCESS_ID = secrets.token_hex(6)  # a forked child is a process of its own (it keeps the parent's group)


os.register_at_fork(after_in_child=_new_process_id)


@dataclass(frozen=True)
class ContainerLimits:
    """Resource limits for one container (Docker's mem_limit, nano_cpus and pids_limit, and a disk limit)."""

    memory: str = "4g"
    """Memory limit in Docker's notation ("512m", "4g"); the container's processes are OOM-killed beyond it."""
    cpus: float = DEFAULT_CPUS
    """CPU quota in cores (2.0 = at most two cores' worth of time); by default 3/4 of the host's cores,
    between 0.5 and 2."""
    pids: int = 1024
    """Most processes and threads alive at once (stops fork bombs)."""
    disk: int | None = DEFAULT_DISK
    """Most bytes the container may write to its filesystem (4 GiB, or $CLIGYM_DISK_LIMIT); None: no limit.
    The storage driver enforces it where it can (overlay2 on xfs with pquota); elsewhere `ContainerSession`
    watches `disk_usage` and interrupts the command that crosses it."""


@dataclass(frozen=True)
class ExecResult:
    """What a one-shot command in a container did."""

    output: str
    """stdout and stderr, merged in order, decoded as UTF-8 with invalid bytes replaced."""
    exit_code: int
    """The command's exit status (124 or 137 when it timed out)."""
    seconds: float
    """Wall-clock time the command took."""
    timed_out: bool
    """True when the command ran past its timeout and was killed."""
    truncated: bool = False
    """True when the output was longer than the cap and its middle was replaced by a line
    ``[... N bytes truncated ...]``."""


def docker_client() -> docker.DockerClient:
    """The Docker client for this process (made once, from the environment: DOCKER_HOST etc.).

    Raises DockerUnavailableError when the daemon does not answer a ping.
    """
    global _client
    if _client is None:
        try:
            client = docker.from_env()
            client.ping()
        except (docker.errors.DockerException, requests.exceptions.RequestException) as e:
            raise DockerUnavailableError(
                f"cannot reach the Docker daemon ({e}): is it running? Start it (e.g. `systemctl start docker`) "
                "or point DOCKER_HOST at it, and check that this user may use its socket."
            ) from e
        _client = client
    return _client


def require_image(image: str) -> None:
    """Raise ImageNotFoundError unless `image` is on this machine; the message says which command builds it."""
    try:
        docker_client().images.get(image)
    except docker.errors.ImageNotFound:
        hint = next((cmd for prefix, cmd in _BUILD_HINTS if image.startswith(prefix)), None)
        how = f"build it with `{hint}`" if hint else "build or load it first (images are never pulled)"
        raise ImageNotFoundError(f"image {image!r} is not on this machine: {how}") from None


def start_container(
    image: str,
    *,
    network: bool = False,
    limits: ContainerLimits = ContainerLimits(),
    labels: dict[str, str] | None = None,
    workdir: str | None = None,
    env: dict[str, str] | None = None,
    name_prefix: str = "cligym",
) -> Container:
    """Start a locked-down, detached container from `image` that sleeps until it is removed.

    PID 1 is Docker's init (reaps zombies) running ``sleep infinity``; commands go in with `exec_once` or
    a `ContainerSession`. No network unless `network`, not privileged, only `CAPABILITIES`; the only mount
    is the host's /dev/null over /dev/null. Labelled with this process (see `ownership_labels`), whose
    watchdog removes it if the process dies without doing so.
    """
    require_image(image)
    all_labels = {**(labels or {}), **ownership_labels()}
    if limits.disk:
        all_labels[DISK_LABEL] = str(limits.disk)
    settings = dict(
        name=f"{name_prefix}-{secrets.token_hex(6)}",
        detach=True,
        init=True,
        network_mode="bridge" if network else "none",
        privileged=False,
        cap_drop=["ALL"],
        cap_add=list(CAPABILITIES),
        # No no-new-privileges: it disables setuid programs (su, sudo, passwd) for non-root users, which tasks
        # may exercise; what setuid can gain is already capped by the small capability bounding set above.
        mem_limit=limits.memory,
        nano_cpus=int(limits.cpus * 1e9),
        pids_limit=limits.pids,
        # A mount point cannot be unlinked (EBUSY), so `rm -f /dev/null` cannot break every later `>/dev/null`.
        mounts=[docker.types.Mount("/dev/null", "/dev/null", type="bind")],
        labels=all_labels,
        working_dir=workdir,
        environment=env,
        # The scoring harness's read-only static busybox and its private tmpfs (runtime/toolkit.py).
        **toolkit.container_mounts(),
    )
    return _run_with_disk_quota(image, settings, limits.disk)


def _run_with_disk_quota(image: str, settings: dict, disk: int | None) -> Container:
    """`containers.run` with the storage driver's size quota when the daemon supports one (tried once)."""
    global _storage_quota
    run = docker_client().containers.run
    if disk and _storage_quota is not False:
        try:
            container = run(image, ["sleep", "infinity"], storage_opt={"size": str(disk)}, **settings)
        except docker.errors.APIError as e:
            if "storage-opt" not in str(e.explanation or e) or _storage_quota:
                raise
            _storage_quota = False  # e.g. fuse-overlayfs, or overlay2 not on xfs with pquota: watched instead
        else:
            _storage_quota = True
            return container
    return run(image, ["sleep", "infinity"], **settings)


def ownership_labels() -> dict[str, str]:
    """The labels for a container this process is about to start: `LABEL`, this process's id and group, its
    owner on this host and the pid namespace. Also starts this process's watchdog (once), so that a container
    it starts does not outlive it by more than a few seconds. Every container cligym starts takes these."""
    watchdog.ensure_watchdog(PROCESS_ID)
    return {
        LABEL: "1",
        PROCESS_LABEL: PROCESS_ID,
        GROUP_LABEL: GROUP_ID,
        OWNER_LABEL: watchdog.owner(),
        PIDNS_LABEL: watchdog.pid_namespace(),
    }


def open_exec_socket(container: Container, cmd: list[str], **exec_create_kwargs):
    """Start `cmd` in `container` attached to a raw socket; returns (exec id, socket-like object, raw socket).

    The raw socket carries Docker's multiplexed stream (see `FrameDecoder`) and, with stdin=True, takes input.
    """
    api = docker_client().api
    exec_id = api.exec_create(container.id, cmd, **exec_create_kwargs)["Id"]
    sock = api.exec_start(exec_id, socket=True)
    raw = getattr(sock, "_sock", sock)  # Python 3's SocketIO cannot be written to; its socket can
    raw.settimeout(None)  # we wait with selectors and our own deadlines, never the client's 60 s
    return exec_id, sock, raw


class FrameDecoder:
    """Turns Docker's multiplexed exec stream (8-byte header: stream type, 3 zero bytes, big-endian length)
    back into the payload bytes, stdout and stderr merged in arrival order."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._left = 0  # payload bytes still to come in the current frame

    def feed(self, data: bytes) -> bytes:
        """Payload bytes contained in `data` (plus what earlier calls left incomplete)."""
        self._buf += data
        out = bytearray()
        pos, end = 0, len(self._buf)
        while pos < end:
            if self._left == 0:
                if end - pos < 8:
                    break
                (self._left,) = struct.unpack_from(">4xL", self._buf, pos)
                pos += 8
                continue
            take = min(self._left, end - pos)
            out += self._buf[pos : pos + take]
            pos += take
            self._left -= take
        del self._buf[:pos]
        return bytes(out)


def exec_once(
    container: Container,
    command: str,
    *,
    timeout: float,
    workdir: str | None = None,
    user: str | None = None,
    output_cap: int = 1 << 20,
) -> ExecResult:
    """Run `command` once with ``bash -lc`` (for test suites, not agent commands) and wait for it.

    Coreutils ``timeout -k 5`` interrupts it after `timeout` seconds (then kills it 5 s later), so it cannot
    hang; the host also stops waiting shortly after that. Of its output, the first and last `output_cap`
    bytes in all are kept (see `ExecResult.truncated`), so a command printing gigabytes costs the host no
    more memory than that.
    """
    # stdout and stderr are separate streams in an exec: merge them inside, so their order survives
    cmd = ["timeout", "-k", "5", f"{timeout:g}", "bash", "-lc", f"exec 2>&1; {command}"]
    start = time.monotonic()
    out = OutputCap(output_cap)
    exec_id = stream_exec(container, cmd, deadline=start + timeout + 15, on_data=out.add, workdir=workdir,
                          user=user or "")  # fmt: skip
    exit_code = exec_exit_code(exec_id)
    seconds = time.monotonic() - start
    if exit_code is None:  # still running although timeout should have killed it: report it as killed
        exit_code = 137
    timed_out = exit_code in (124, 137) and seconds >= timeout
    text, truncated = out.text()
    return ExecResult(text, exit_code, seconds, timed_out, truncated)


def stream_exec(
    container: Container, cmd: list[str], *, deadline: float, on_data: Callable[[bytes], object], **kwargs
) -> str:
    """Start `cmd` in `container` and hand its output (stdout and stderr, decoded frames) to `on_data` until it
    ends, `deadline` (monotonic) passes, or `on_data` returns False; returns the exec id.

    `kwargs` go to `exec_create` (workdir, user, environment).
    """
    exec_id, sock, raw = open_exec_socket(container, cmd, **kwargs)
    decoder = FrameDecoder()
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(raw, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not sel.select(left):
                    continue
                data = raw.recv(1 << 20)
                if not data or on_data(decoder.feed(data)) is False:
                    break
    finally:
        sock.close()
    return exec_id


def exec_exit_code(exec_id: str, wait: float = 2.0) -> int | None:
    """The exit code of a finished exec; None if it is still running after `wait` seconds."""
    api = docker_client().api
    deadline = time.monotonic() + wait
    while True:
        info = api.exec_inspect(exec_id)
        if not info["Running"] and info["ExitCode"] is not None:
            return info["ExitCode"]
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)  # the stream can close a moment before Docker records the exit


def signal_process_group(container: Container, pid: int, signal: str) -> None:
    """Send `signal` (e.g. "INT") to the process group led by `pid` inside `container`; if `pid` leads none,
    to `pid` and its children."""
    script = f"kill -{signal} -- -{pid} 2>/dev/null || {{ pkill -{signal} -P {pid}; kill -{signal} {pid}; }}"
    api = docker_client().api
    api.exec_start(api.exec_create(container.id, ["bash", "-c", script])["Id"])


def read_file(container: Container, path: str) -> bytes | None:
    """The contents of the file at `path` in `container` (symlinks followed), or None if there is none.

    Raises IsADirectoryError if `path` is a directory.
    """
    for _ in range(40):  # symlink hops, as many as the kernel allows
        try:
            stream, stat = container.get_archive(path)
        except docker.errors.NotFound:
            return None
        data = b"".join(stream)
        if stat.get("linkTarget"):
            path = posixpath.join(posixpath.dirname(path), stat["linkTarget"])
            continue
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            member = tar.next()
            if member is None:
                return None
            if member.isdir():
                raise IsADirectoryError(f"{path} in container {container.name} is a directory")
            f = tar.extractfile(member)
            return f.read() if f else None
    raise CligymError(f"{path} in container {container.name}: too many levels of symbolic links")


def container_state(container: Container) -> str:
    """Docker's State.Status of `container`: "running", "paused", "exited", "created", "restarting",
    "removing" or "dead"; "removed" if it no longer exists; "unreachable" if the daemon cannot say."""
    try:
        return docker_client().api.inspect_container(container.id)["State"]["Status"]
    except docker.errors.NotFound:
        return "removed"
    except (CligymError, docker.errors.DockerException, requests.exceptions.RequestException):
        return "unreachable"


def gc(client: docker.DockerClient | None = None, *, labels: dict[str, str] | None = None) -> int:
    """Remove every container and network labelled `LABEL` (whoever started it); returns how many.

    `labels` narrows it to those that also carry these labels (e.g. one test run's).
    """
    client = client or docker_client()
    return watchdog.remove_labelled(client, [LABEL] + [f"{k}={v}" for k, v in (labels or {}).items()])


def reap_orphans(client: docker.DockerClient | None = None) -> int:
    """Remove the containers (and networks) of cligym processes on this host that have ended; returns how
    many. Containers of live processes, or of other hosts or pid namespaces, are left alone.

    One `containers.list` with a label filter, so cheap enough to call before every command that starts
    containers (the `cligym` CLI does); this catches what a process's watchdog could not (it was killed too).
    """
    client = client or docker_client()
    host, namespace = socket.gethostname(), watchdog.pid_namespace()
    filters = {"label": [LABEL, OWNER_LABEL, f"{PIDNS_LABEL}={namespace}"]}
    ended = set()
    for container in client.containers.list(all=True, filters=filters, sparse=True):
        labels = container.attrs.get("Labels") or {}
        owner_host, _, pid_and_start = labels.get(OWNER_LABEL, "").partition(":")  # no ":" in hostnames
        pid, _, start = pid_and_start.partition(":")
        if owner_host == host and pid.isdigit() and not watchdog.process_alive(int(pid), start):
            ended.add(labels.get(PROCESS_LABEL))
    return sum(gc(client, labels={PROCESS_LABEL: p}) for p in sorted(ended) if p)
