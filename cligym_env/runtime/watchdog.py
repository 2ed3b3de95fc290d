"""No orphan containers: a process's containers end with it, even when it is SIGKILLed.

A process that starts its first container also starts one detached watchdog (`ensure_watchdog`), in its own
session so that a kill of the process group or a terminal's Ctrl-C spares it. The watchdog checks every
second whether its parent is alive (the same process, not a new one that reused the pid: the start time in
/proc/PID/stat must match) and, once it is not, removes every container and network labelled with the
parent's process id, then exits. What even a watchdog cannot catch (it was killed too, the machine rebooted)
`containers.reap_orphans` removes: every container carries its owner as "hostname:pid:starttime".

This module imports only the standard library at the top, and the watchdog runs it by path
(``python -c "import runpy; runpy.run_path('.../watchdog.py', run_name='__main__')" --parent PID
--parent-start TICKS --process-id ID``), not as part of the cligym_env package (``python -m`` imports the
package first): an idle watchdog then holds ~15 MB, not the ~60 MB and 1 s of CPU that the package costs.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

POLL_SECONDS = 1.0
PROCESS_LABEL = "cligym.process"
"""The label on every container that names the (unique) cligym process that started it."""

_watchdog: subprocess.Popen | None = None
_lock = threading.Lock()  # rollout workers start containers from several threads


def process_start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks after boot, field 22 of /proc/PID/stat) as text; None if it
    does not exist or is a zombie (it has ended and waits to be reaped). "" where there is no /proc."""
    if not os.path.isdir("/proc/self"):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return ""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the name before ")" may hold spaces
    except (OSError, IndexError):
        return None
    return None if fields[0] in ("Z", "X") else fields[19]


def process_alive(pid: int, start_time: str) -> bool:
    """True while process `pid` runs and is the one that started at `start_time` (see `process_start_time`)."""
    return process_start_time(pid) == start_time


def owner() -> str:
    """This process as the owner of a container: "hostname:pid:starttime"."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start_time(pid)}"


def pid_namespace() -> str:
    """This process's pid namespace ("pid:[4026531836]"), so that pids are only compared within one."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def remove_container(container) -> None:
    """Remove `container` and its processes at once; a container already gone is fine."""
    import docker.errors

    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as e:
        if e.status_code != 409:  # 409: removal already in progress
            raise


def remove_labelled(client, labels: list[str]) -> int:
    """Remove every container and network that carries all of `labels` ("key" or "key=value"); returns
    how many. Ones already gone, or being removed by someone else, are fine."""
    import docker.errors

    filters = {"label": labels}
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


def ensure_watchdog(process_id: str) -> None:
    """Start this process's watchdog for containers labelled `process_id`, unless it is already running."""
    global _watchdog
    with _lock:
        if _watchdog is not None and _watchdog.poll() is None:
            return
        pid = os.getpid()
        # By path, not `-m cligym_env...`: the package's imports are not needed (see the module docstring).
        bootstrap = f"import runpy; runpy.run_path({os.path.abspath(__file__)!r}, run_name='__main__')"
        argv = [
            "--parent",
            str(pid),
            "--parent-start",
            process_start_time(pid) or "",
            "--process-id",
            process_id,
        ]
        _watchdog = subprocess.Popen(
            [sys.executable, "-c", bootstrap, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            cwd="/",  # `-c` puts the cwd on sys.path: nothing there should shadow a module
        )


def _forget_watchdog() -> None:
    global _watchdog, _lock
    _watchdog = None  # a forked child is not the parent its inherited watchdog watches
    _lock = threading.Lock()  # another thread may have held it at the fork


os.register_at_fork(after_in_child=_forget_watchdog)


def watch(parent: int, parent_start: str, process_id: str, *, poll: float = POLL_SECONDS) -> int:
    """Wait until process `parent` (started at `parent_start`) has ended, then remove its containers and
    networks (label cligym.process=`process_id`) until none is left; returns how many were removed."""
    while process_alive(parent, parent_start):
        time.sleep(poll)
    import docker

    removed = 0
    for _ in range(30):  # until a pass finds nothing: a create the parent sent as it died may land late
        try:
            found = remove_labelled(docker.from_env(), [f"{PROCESS_LABEL}={process_id}"])
        except docker.errors.DockerException:
            found = 1  # the daemon is busy or restarting: try again
        removed += found
        if not found:
            break
        time.sleep(poll)
    return removed


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--parent PID [--parent-start TICKS] --process-id ID``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parent", type=int, required=True, help="The pid of the process to watch.")
    parser.add_argument("--parent-start", help="Its start time (default: read now from /proc).")
    parser.add_argument("--process-id", required=True, help="The cligym.process label of its containers.")
    args = parser.parse_args(argv)
    start = args.parent_start if args.parent_start is not None else process_start_time(args.parent)
    if start is not None:
        watch(args.parent, start, args.process_id)


if __name__ == "__main__":
    main()
