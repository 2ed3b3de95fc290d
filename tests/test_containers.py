"""containers.py against real Docker: lockdown, exec_once, read_file, removal and gc."""

from __future__ import annotations

import uuid

import docker.errors
import pytest

from cligym_env.errors import DockerUnavailableError, ImageNotFoundError
from cligym_env.runtime import containers
from cligym_env.runtime.containers import ContainerLimits, exec_once, read_file


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
    assert not container.attrs["Mounts"] and not host["Binds"]


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
