"""The harness's own tools inside a container, out of the agent's reach.

Everything the harness runs in a container (listing changes, restoring files, capturing the login environment,
running the test command, reading the results) runs with a statically linked busybox on a read-only bind mount
(`TOOLS_MOUNT`), never with the container's shell, coreutils, `timeout` or `tee`, which a fault or an agent can
replace. Results go to a random folder on a tmpfs (`PRIVATE_ROOT`) that a container restart empties.

Example:
    >>> run_tool(container, "echo hi", timeout=10).output
    b'hi\\n'
"""

from __future__ import annotations

import os
import shlex
import shutil
import struct
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from cligym_env.errors import CligymError
from cligym_env.runtime import cache

TOOLS_MOUNT = "/run/cligym-tools"
BUSYBOX = f"{TOOLS_MOUNT}/busybox"
TOOLS_PATH = f"{TOOLS_MOUNT}/bin"  # one link per busybox applet: harness scripts find only these
PRIVATE_ROOT = "/run/cligym"
# Where a static busybox may be found on the host (Debian: `apt-get install busybox-static`).
_BUSYBOX_CANDIDATES = ("/bin/busybox", "/usr/bin/busybox", "/usr/local/bin/busybox")
_PT_INTERP = 3


class HarnessError(CligymError):
    """The harness could not do its part in a container (it stopped, a tool failed, output overflowed)."""


def _is_static_elf(path: Path) -> bool:
    """True when `path` is a 64-bit little-endian ELF executable without a program interpreter."""
    try:
        with path.open("rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return False
            (phoff,) = struct.unpack_from("<Q", head, 0x20)
            phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
            f.seek(phoff)
            table = f.read(phentsize * phnum)
    except OSError:
        return False
    return all(struct.unpack_from("<I", table, i * phentsize)[0] != _PT_INTERP for i in range(phnum))


def tools_dir() -> Path:
    """The host folder bind-mounted read-only at `TOOLS_MOUNT`, holding a static `busybox` (made once)."""
    folder = cache.cache_dir("harness", "tools")
    target = folder / "busybox"
    if target.is_file() and _is_static_elf(target) and (folder / "bin" / "sh").is_symlink():
        return folder
    candidates = [os.environ.get("CLIGYM_BUSYBOX", ""), *_BUSYBOX_CANDIDATES]
    source = next((Path(c) for c in candidates if c and _is_static_elf(Path(c))), None)
    if source is None:
        raise CligymError(
            "the test harness needs a statically linked busybox on this machine: install it "
            "(`apt-get install busybox-static`) or point CLIGYM_BUSYBOX at one"
        )
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".busybox.{os.getpid()}"
    shutil.copyfile(source, tmp)
    tmp.chmod(0o755)
    tmp.replace(target)
    applets = subprocess.run(
        [str(target), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name in applets:
        link = bin_dir / name
        if not link.is_symlink():
            link.symlink_to("../busybox")
    return folder


def container_mounts() -> dict:
    """Keyword arguments for `containers.run`: the read-only tools mount and the private tmpfs."""
    return {
        "volumes": {str(tools_dir()): {"bind": TOOLS_MOUNT, "mode": "ro"}},
        "tmpfs": {PRIVATE_ROOT: "rw,noexec,nosuid,nodev,size=256m,mode=700"},
    }


@dataclass
class ToolResult:
    """What a harness command printed (up to its byte limit) and how it ended."""

    output: bytes
    exit_code: int | None
    overflow: bool
    """True when the command printed more than the limit (the rest was not read)."""
    seconds: float


def run_tool(
    container,
    script: str,
    *,
    timeout: float,
    limit: int = 4 << 20,
    argv: list[str] | None = None,
    workdir: str = "/",
    login: bool = False,
    args: list[str] | tuple[str, ...] = (),
) -> ToolResult:
    """Run `script` with the trusted busybox sh (as root, in `workdir`), at most `timeout` seconds.

    `argv` replaces the default command line (busybox sh -c script); the host reads at most `limit` bytes of
    its output and stops reading (and the command is killed by its timeout) past that. Its PATH holds only
    the busybox applets, unless `login` (the container's own environment, for a login shell). `args` are the
    script's positional parameters ($1...).
    """
    from cligym_env.runtime.containers import exec_exit_code, stream_exec

    cmd = argv or [
        BUSYBOX,
        "timeout",
        "-s",
        "KILL",
        str(max(1, int(timeout))),
        BUSYBOX,
        "sh",
        "-c",
        script,
        "sh",
    ]
    cmd = [*cmd, *args]
    started = time.monotonic()
    data = bytearray()

    def keep(chunk: bytes) -> bool:
        data.extend(chunk)
        return len(data) <= limit

    try:
        exec_id = stream_exec(container, cmd, deadline=started + timeout + 10, on_data=keep, workdir=workdir,
                              user="0:0", environment=None if login else [f"PATH={TOOLS_PATH}"])  # fmt: skip
    except docker.errors.APIError as exc:
        raise HarnessError(
            f"cannot run the harness in container {container.name}: {exc.explanation}"
        ) from exc
    overflow = len(data) > limit
    del data[limit:]
    # Past the limit the command is left to its timeout (or the next kill sweep): its output is not wanted.
    code = None if overflow else exec_exit_code(exec_id, wait=5.0)
    return ToolResult(bytes(data), code, overflow, time.monotonic() - started)


def quote(text: str) -> str:
    """`text` as one word for the busybox sh."""
    return shlex.quote(text)


# Stops every process in the container except PID 1 (docker-init), the keep-alive `sleep` it started and this
# shell: SIGSTOP first, pass after pass, so nothing can fork past the sweep; then SIGKILL. The keep-alive is
# the first child of PID 1 (agent processes orphaned to PID 1 come later and have higher pids unless pids
# wrapped, which a container's pids limit makes impossible).
KILL_ALL = r"""
keep=" 1 $$ $PPID "
k=$(for s in /proc/[0-9]*/stat; do read -r l < "$s" 2>/dev/null && r=${l##*) } && set -- $r && [ "$2" = 1 ] && echo "${s#/proc/}"; done | sort -n | head -n 1)
keep="$keep${k%/stat} "
i=0
while [ $i -lt 200 ]; do
  n=0
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    case "$keep" in *" $p "*) continue ;; esac
    read -r l < "$d/stat" 2>/dev/null || continue
    r=${l##*) }
    case "$r" in Z*|X*) continue ;; esac  # zombies: dead already, their parent reaps them
    kill -STOP "$p" 2>/dev/null && n=$((n+1))
  done
  [ $n -eq 0 ] && exit 0
  for d in /proc/[0-9]*; do
    p=${d#/proc/}
    case "$keep" in *" $p "*) continue ;; esac
    kill -KILL "$p" 2>/dev/null
  done
  i=$((i+1))
done
echo "processes keep appearing" >&2
exit 1
"""


def kill_all_processes(container) -> None:
    """Kill every process in the container but its init (see `KILL_ALL`); raises HarnessError if it cannot."""
    result = run_tool(container, KILL_ALL, timeout=30)
    if result.exit_code != 0:
        raise HarnessError(
            f"could not stop the processes in container {container.name}: "
            f"{result.output.decode(errors='replace').strip()[-200:] or result.exit_code}"
        )
