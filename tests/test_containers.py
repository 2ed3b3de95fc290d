"""containers.py against real Docker: lockdown, limits, exec_once, read_file, removal, gc and no orphans."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import docker.errors
import pytest

from cligym_env.errors import CligymError, DockerUnavailableError, ImageNotFoundError
from cligym_env.runtime import containers, disk
from cligym_env.runtime.containers import ContainerLimits, exec_once, read_file

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def container(base_image):
    c = containers.start_container(base_image, limits=ContainerLimits(memory="1g", cpus=1.5, pids=256))
    yield c
    containers.remove_container(c)


def test_container_settings(container):
    container.reload()
    host = container.attrs["HostConfig"]
    assert container.labels[containers.LABEL] == "1"
    assert container.labels[containers.PROCESS_LABEL] == containers.PROCESS_ID
    assert host["NetworkMode"] == "none" and not host["Privileged"] and host["Init"]
    assert (host["PidsLimit"], host["Memory"], host["NanoCpus"]) == (256, 1 << 30, 1_500_000_000)
    assert host["CapDrop"] == ["ALL"] and sorted(host["CapAdd"]) == sorted(containers.CAPABILITIES)
    # the host's /dev/null over /dev/null (so that it cannot be removed); any other mount is read-only
    mounts = {m["Destination"]: (m["Type"], m["Source"], m["RW"]) for m in container.attrs["Mounts"]}
    assert mounts.pop("/dev/null") == ("bind", "/dev/null", True)
    assert not [path for path, (_, _, writable) in mounts.items() if writable], mounts


def test_locked_down_from_inside(container):
    interfaces = exec_once(container, "tail -n +3 /proc/net/dev | cut -d: -f1", timeout=10).output.split()
    assert interfaces == ["lo"]
    # CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID = bits 0 1 3 4 5 6 7
    assert (
        "CapEff:\t00000000000000fb"
        in exec_once(container, "grep CapEff /proc/self/status", timeout=10).output
    )
    pids = exec_once(
        container, "cat /sys/fs/cgroup/pids.max /sys/fs/cgroup/pids/pids.max 2>/dev/null", timeout=10
    )
    assert pids.output.strip() == "256"
    for forbidden in (
        "ip link add dummy0 type dummy",
        "mkdir -p /m && mount -t tmpfs t /m",
        "mknod /dev/x c 1 3",
    ):
        assert exec_once(container, forbidden, timeout=10).exit_code != 0, forbidden


def test_root_can_chown_su_and_install_debs(container):
    """The kept capabilities are enough for chown/chmod, su to a user, and apt-get from a local repository."""
    script = r"""set -e
    useradd -m tester && touch /f && chown tester /f && chmod 600 /f && stat -c '%U %a' /f
    su tester -c 'whoami'
    mkdir -p /pkg/DEBIAN /pkg/usr/bin /repo
    printf 'Package: hello-cg\nVersion: 1.0\nArchitecture: all\nMaintainer: x <x@y>\nDescription: t\n' > /pkg/DEBIAN/control
    printf '#!/bin/sh\necho hello-from-deb\n' > /pkg/usr/bin/hello-cg && chmod 755 /pkg/usr/bin/hello-cg
    dpkg-deb --build /pkg /repo/hello-cg_1.0_all.deb >/dev/null && cd /repo
    { cat /pkg/DEBIAN/control; echo 'Filename: ./hello-cg_1.0_all.deb'; echo "Size: $(stat -c %s *.deb)"
      echo "SHA256: $(sha256sum *.deb | cut -d' ' -f1)"; echo; } > Packages
    rm -f /etc/apt/sources.list.d/*; echo 'deb [trusted=yes] file:/repo ./' > /etc/apt/sources.list
    apt-get update -qq && apt-get install -y -qq hello-cg >/dev/null 2>&1 && hello-cg
    """
    result = exec_once(container, script, timeout=60)
    assert result.exit_code == 0, result.output
    assert result.output.split()[-4:] == ["tester", "600", "tester", "hello-from-deb"], result.output


def test_exec_once(container):
    result = exec_once(container, "echo out; echo err >&2; pwd; exit 7", timeout=10, workdir="/tmp")
    assert (result.output, result.exit_code, result.timed_out) == ("out\nerr\n/tmp\n", 7, False)
    assert exec_once(container, "whoami", timeout=10, user="nobody").output == "nobody\n"


def test_exec_once_timeout(container):
    result = exec_once(container, "echo started; sleep 30", timeout=1)
    assert result.timed_out and result.exit_code == 124 and result.output == "started\n"
    assert result.seconds < 5
    # a command that ignores SIGTERM is killed 5 s later
    result = exec_once(container, "trap '' TERM; sleep 30 & wait; wait", timeout=1)
    assert result.timed_out and result.exit_code == 137 and result.seconds < 10


def test_read_file(container):
    exec_once(
        container, "printf 'a\\0\\xff' > /tmp/bin && ln -sf bin /tmp/link && mkdir -p /tmp/d", timeout=10
    )
    assert read_file(container, "/tmp/bin") == b"a\0\xff"
    assert read_file(container, "/tmp/link") == b"a\0\xff"
    assert read_file(container, "/tmp/absent") is None
    with pytest.raises(IsADirectoryError):
        read_file(container, "/tmp/d")


def test_remove_and_gc(base_image):
    run_label = {"cligym.test-run": uuid.uuid4().hex}
    started = [containers.start_container(base_image, labels=run_label) for _ in range(2)]
    client = containers.docker_client()
    client.networks.create(f"cligym-test-{uuid.uuid4().hex[:8]}", labels={containers.LABEL: "1", **run_label})
    containers.remove_container(started[0])
    containers.remove_container(started[0])  # already gone: fine
    assert containers.gc(labels=run_label) == 2  # the other container and the network
    assert not client.containers.list(all=True, filters={"label": [f"{k}={v}" for k, v in run_label.items()]})
    with pytest.raises(docker.errors.NotFound):
        started[1].reload()


def test_missing_image_names_the_build_command():
    with pytest.raises(ImageNotFoundError, match="cligym base build"):
        containers.require_image("cligym/base:does-not-exist")
    with pytest.raises(ImageNotFoundError, match="cligym gold build NAME"):
        containers.start_container("cligym/gold-nothing:latest")


def test_unreachable_daemon(monkeypatch, tmp_path):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no.sock")
    monkeypatch.setattr(containers, "_client", None)
    with pytest.raises(DockerUnavailableError, match="cannot reach the Docker daemon .*is it running"):
        containers.docker_client()


def test_default_cpu_quota_leaves_the_host_a_core():
    cores = os.cpu_count() or 1
    assert 0.5 <= ContainerLimits().cpus <= min(2.0, cores * 0.75) < cores or cores == 1


def _peak_rss() -> int:
    """This process's peak resident memory in bytes (VmHWM)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def test_exec_once_keeps_head_and_tail_in_bounded_memory(container):
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM, so the peak below is this test's
    before = _peak_rss()
    command = "echo START; head -c 200000000 /dev/zero | tr '\\0' a; echo; echo END"
    result = exec_once(container, command, timeout=120, output_cap=100_000)
    growth = _peak_rss() - before
    assert result.exit_code == 0 and result.truncated and not result.timed_out
    assert result.output.startswith("START\naaa") and result.output.endswith("aaa\nEND\n")
    assert f"\n[... {200_000_011 - 100_000} bytes truncated ...]\n" in result.output
    assert len(result.output) < 100_100
    assert growth < 100 << 20, f"host memory grew by {growth >> 20} MiB"
    assert not exec_once(container, "echo small", timeout=10).truncated


def test_dev_null_survives_rm(container):
    removed = exec_once(container, "rm -f /dev/null; echo rc=$?", timeout=10)
    assert "rc=1" in removed.output and "busy" in removed.output.lower(), removed.output
    check = exec_once(
        container, "echo gone > /dev/null && test -c /dev/null && wc -c < /dev/null", timeout=10
    )
    assert (check.exit_code, check.output) == (0, "0\n")


def test_disk_usage_counts_what_the_container_writes(container):
    before = containers.disk_usage(container)
    exec_once(container, "head -c 20000000 /dev/urandom > /tmp/disk-usage-test", timeout=30)
    grown = containers.disk_usage(container) - before
    exec_once(container, "rm -f /tmp/disk-usage-test", timeout=10)
    assert 20_000_000 <= grown < 22_000_000
    assert containers.disk_usage(container) < before + 1_000_000
    assert container.labels[containers.DISK_LABEL] == str(ContainerLimits().disk)


def test_disk_limit_from_environment(monkeypatch):
    monkeypatch.setenv("CLIGYM_DISK_LIMIT", "100m")
    assert disk._disk_limit_from_env() == 100 << 20
    monkeypatch.setenv("CLIGYM_DISK_LIMIT", "0")
    assert disk._disk_limit_from_env() is None
    monkeypatch.setenv("CLIGYM_DISK_LIMIT", "lots")
    with pytest.raises(CligymError, match="CLIGYM_DISK_LIMIT='lots'"):
        disk._disk_limit_from_env()


# -- no orphans -------------------------------------------------------------------------------------------

# A cligym process: starts a container, prints its id and its process id, then either cleans up after
# itself and exits ("clean") or waits to be killed ("wait").
_CHILD = """
import sys, time
from cligym_env.runtime import containers
c = containers.start_container(sys.argv[1], name_prefix="cligym-orphan-test")
print(c.id, containers.PROCESS_ID, flush=True)
if sys.argv[2] == "clean":
    containers.gc(labels={containers.PROCESS_LABEL: containers.PROCESS_ID})
else:
    time.sleep(300)
"""


@pytest.fixture
def group():
    """A CLIGYM_PROCESS_ID for this test's child processes; their containers are removed at the end."""
    group = f"test-orphans-{uuid.uuid4().hex[:8]}"
    yield group
    containers.gc(labels={containers.GROUP_LABEL: group})


def _child(image: str, group: str, mode: str = "wait") -> tuple[subprocess.Popen, str, str]:
    """Start a child process (see `_CHILD`); returns it, its container's id and its process id."""
    env = os.environ | {"CLIGYM_PROCESS_ID": group}
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, image, mode], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    container_id, process_id = proc.stdout.readline().split()
    return proc, container_id, process_id


def _exists(container_id: str) -> bool:
    try:
        containers.docker_client().containers.get(container_id)
    except docker.errors.NotFound:
        return False
    return True


def _watchdog_pid(process_id: str) -> int:
    """The pid of the watchdog that watches cligym process `process_id`."""
    for proc in Path("/proc").iterdir():
        with contextlib.suppress(OSError):
            if f"--process-id\0{process_id}\0".encode() in (proc / "cmdline").read_bytes():
                return int(proc.name)
    raise AssertionError(f"no watchdog for process {process_id}")


def test_labels_name_the_process_its_group_and_its_owner(container):
    labels = container.labels
    hostname, pid, start = labels[containers.OWNER_LABEL].split(":")
    assert (hostname, int(pid)) == (socket.gethostname(), os.getpid()) and start.isdigit()
    assert labels[containers.GROUP_LABEL] == containers.GROUP_ID
    assert labels[containers.PIDNS_LABEL] == os.readlink("/proc/self/ns/pid")


def test_killed_process_containers_are_removed_by_its_watchdog(base_image, group):
    proc, container_id, _ = _child(base_image, group)
    assert _exists(container_id)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while _exists(container_id):
        assert time.monotonic() < deadline, "the killed process's container outlived it by 10 s"
        time.sleep(0.2)


def test_reap_orphans_when_the_watchdog_died_too(base_image, group):
    proc, container_id, process_id = _child(base_image, group)
    os.kill(_watchdog_pid(process_id), signal.SIGKILL)
    proc.kill()
    proc.wait()
    time.sleep(1.5)  # what the watchdog would have done by now: nothing, it is dead
    assert _exists(container_id)
    assert containers.reap_orphans() >= 1
    assert not _exists(container_id)


def test_processes_sharing_a_group_keep_their_own_containers(base_image, group):
    waiting, waiting_container, waiting_id = _child(base_image, group)
    try:
        clean, clean_container, clean_id = _child(base_image, group, "clean")
        assert clean.wait(timeout=60) == 0
        assert clean_id != waiting_id
        time.sleep(2)  # and the ended process's watchdog has looked too
        assert not _exists(clean_container) and _exists(waiting_container)
        labels = containers.docker_client().containers.get(waiting_container).labels
        assert labels[containers.GROUP_LABEL] == group and labels[containers.PROCESS_LABEL] == waiting_id
    finally:
        waiting.kill()
        waiting.wait()


def test_a_forked_child_is_a_process_of_its_own():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its ids, and leave without running the parent's cleanup
        os.write(write, f"{containers.PROCESS_ID} {containers.GROUP_ID}".encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_id, child_group = os.read(read, 100).decode().split()
    os.close(read)
    assert child_id != containers.PROCESS_ID and child_group == containers.GROUP_ID


def test_cli_reaps_orphans_and_gc_orphans_flag(base_image, group):
    proc, container_id, process_id = _child(base_image, group)
    os.kill(_watchdog_pid(process_id), signal.SIGKILL)
    proc.kill()
    proc.wait()
    result = subprocess.run(
        [sys.executable, "-m", "cligym_env.cli", "gc", "--orphans", "--json"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    assert json.loads(result.stdout)["removed"] >= 1 and not _exists(container_id)
