"""Start, inspect and remove the containers cligym runs: locked down, labelled, cleaned up by `gc`.

Every container and network started here carries the label ``cligym.managed=1`` so that `gc` (and
`cligym gc`) can find and remove whatever a crash or an interrupt left behind.

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
import struct
import tarfile
import time
from dataclasses import dataclass

import docker
import docker.errors
import requests.exceptions
from docker.models.containers import Container

from cligym_env.errors import CligymError, DockerUnavailableError, ImageNotFoundError

LABEL = "cligym.managed"
# Also on every container: which process started it, so a process (e.g. a test run) can clean up only its own
# while others share the Docker daemon.
PROCESS_LABEL = "cligym.process"
# Which process started a container; a parent may set it for a child (`CLIGYM_PROCESS_ID`) to clean up after it.
PROCESS_ID = os.environ.get("CLIGYM_PROCESS_ID") or secrets.token_hex(6)

# Linux capabilities a root user in the container keeps: chown/chmod any file (CHOWN, DAC_OVERRIDE, FOWNER,
# FSETID), switch users for su and apt's _apt sandbox (SETUID, SETGID), signal other users' processes (KILL).
# Enough for bash, pip, apt-get/dpkg from a local repository, chmod/chown and su; nothing touching the
# network stack, mounts, devices or the kernel.
CAPABILITIES = ("CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETUID", "SETGID", "KILL")

# Images cligym builds, by name prefix, and the command that builds each (named in "image not found").
_BUILD_HINTS = (("cligym/base", "cligym base build"), ("cligym/gold", "cligym gold build NAME"))

_client: docker.DockerClient | None = None


@dataclass(frozen=True)
class ContainerLimits:
    """Resource limits for one container (Docker's mem_limit, nano_cpus and pids_limit)."""

    memory: str = "4g"
    """Memory limit in Docker's notation ("512m", "4g"); the container's processes are OOM-killed beyond it."""
    cpus: float = 2.0
    """CPU quota in cores (2.0 = at most two cores' worth of time)."""
    pids: int = 1024
    """Most processes and threads alive at once (stops fork bombs)."""


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
    a `ContainerSession`. No network unless `network`, no volumes, not privileged, only `CAPABILITIES`.
    """
    require_image(image)
    return docker_client().containers.run(
        image,
        ["sleep", "infinity"],
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
        labels={**(labels or {}), LABEL: "1", PROCESS_LABEL: PROCESS_ID},
        working_dir=workdir,
        environment=env,
    )


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
    container: Container, command: str, *, timeout: float, workdir: str | None = None, user: str | None = None
) -> ExecResult:
    """Run `command` once with ``bash -lc`` (for test suites, not agent commands) and wait for it.

    Coreutils ``timeout -k 5`` interrupts it after `timeout` seconds (then kills it 5 s later), so it cannot
    hang; the host also stops waiting shortly after that.
    """
    # stdout and stderr are separate streams in an exec: merge them inside, so their order survives
    cmd = ["timeout", "-k", "5", f"{timeout:g}", "bash", "-lc", f"exec 2>&1; {command}"]
    start = time.monotonic()
    exec_id, sock, raw = open_exec_socket(container, cmd, workdir=workdir, user=user or "")
    decoder, chunks = FrameDecoder(), []
    deadline = start + timeout + 15
    try:
        with selectors.DefaultSelector() as sel:
            sel.register(raw, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0:
                if not sel.select(left):
                    continue
                data = raw.recv(1 << 20)
                if not data:
                    break
                chunks.append(decoder.feed(data))
    finally:
        sock.close()
    exit_code = exec_exit_code(exec_id)
    seconds = time.monotonic() - start
    if exit_code is None:  # still running although timeout should have killed it: report it as killed
        exit_code = 137
    timed_out = exit_code in (124, 137) and seconds >= timeout
    return ExecResult(b"".join(chunks).decode("utf-8", errors="replace"), exit_code, seconds, timed_out)


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


def remove_container(container: Container) -> None:
    """Remove `container` and its processes at once; a container already gone is fine."""
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as e:
        if e.status_code != 409:  # 409: removal already in progress
            raise


def gc(client: docker.DockerClient | None = None, *, labels: dict[str, str] | None = None) -> int:
    """Remove every container and network labelled `LABEL` (whoever started it); returns how many.

    `labels` narrows it to those that also carry these labels (e.g. one test run's).
    """
    client = client or docker_client()
    filters = {"label": [LABEL] + [f"{k}={v}" for k, v in (labels or {}).items()]}
    removed = 0
    for container in client.containers.list(all=True, filters=filters, sparse=True):
        remove_container(container)
        removed += 1
    for network in client.networks.list(filters=filters):
        try:
            network.remove()
            removed += 1
        except docker.errors.NotFound:
            pass
    return removed
