"""The diff-and-load way of making a one-RUN image gives the same file system as `docker build`."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

from cligym_env.runtime.containers import docker_client
from cligym_env.runtime.images import BuildError, build_image
from cligym_env.runtime.layers import run_as_layer

# Every kind of change a RUN makes: modes (setuid, sticky), new files/dirs/links, deletions (file, directory
# tree), a directory replaced by a file and by a fresh directory, a symlink re-pointed, a same-size edit.
COMMAND = (
    "chmod 700 /tmp && chmod u+s /usr/bin/tail && chmod 1777 /srv"
    " && echo x > /etc/added && mkdir -p /opt/new/deep && echo y > /opt/new/deep/f && ln -s /opt/new /opt/link"
    " && rm -f /etc/debian_version && rm -rf /usr/share/doc"
    " && rm -rf /mnt && touch /mnt"
    " && rm -rf /var/log && mkdir -m 0750 /var/log && touch /var/log/new"
    " && ln -s /nowhere /usr/local/bin/pager && ln -sfn /nowhere2 /usr/local/bin/pager"
    " && sed -i 's/^root:x:/root:*:/' /etc/passwd && chown 1:1 /etc/added"
)
LISTING = (
    r"find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o -printf '%y %m %U %G %s %l %p\n'"
    r" | grep -v -e ' /etc/hosts$' -e ' /etc/hostname$' -e ' /etc/resolv.conf$' | sort"
    r" && find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o -type f -print0"
    r" | grep -zv -e '^/etc/host' -e '^/etc/resolv.conf' | xargs -0 md5sum | sort"
)


def _file_system(image: str) -> list[str]:
    out = docker_client().containers.run(image, ["/bin/sh", "-c", LISTING], remove=True, network_mode="none")
    return out.decode().splitlines()


def _docker_build(base: str, command: str, tag: str) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "Dockerfile").write_text(f"FROM {base}\nRUN {command}\n")
        return build_image(Path(tmp), tag)


@pytest.mark.slow
def test_diffed_layer_equals_docker_build(base_image: str) -> None:
    client = docker_client()
    fast, built = "cligym/test-layer:diff", "cligym/test-layer:build"
    try:
        assert run_as_layer(base_image, COMMAND, fast) == fast
        _docker_build(base_image, COMMAND, built)
        got, want = _file_system(fast), _file_system(built)
        assert len(want) > 1000 and any(line.endswith(" /etc/added") for line in want)
        assert set(got) ^ set(want) == set(), sorted(set(got) ^ set(want))[:20]
        configs = [client.images.get(i).attrs["Config"] for i in (fast, built)]
        for key in ("Env", "Cmd", "WorkingDir", "Entrypoint", "User", "Labels"):
            assert configs[0].get(key) == configs[1].get(key), key
        base_layers = client.images.get(base_image).attrs["RootFS"]["Layers"]
        assert client.images.get(fast).attrs["RootFS"]["Layers"][:-1] == base_layers
    finally:
        for image in (fast, built):
            client.images.remove(image, force=True)


@pytest.mark.slow
def test_what_a_diff_cannot_carry_falls_back_or_fails_like_a_build(base_image: str) -> None:
    # A FIFO is not in the listing's vocabulary, and without `find` there is no listing: the caller builds.
    assert run_as_layer(base_image, "mkfifo /opt/pipe", "cligym/test-layer:fifo") is None
    assert run_as_layer(base_image, "rm -f /usr/bin/find", "cligym/test-layer:nofind") is None
    assert not docker_client().images.list(name="cligym/test-layer")
    with pytest.raises(BuildError, match="exited 3"):
        run_as_layer(base_image, "echo failing >&2; exit 3", "cligym/test-layer:fail")
