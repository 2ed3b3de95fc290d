"""The offline base image: mirror discovery, tags, the local apt index, and (slow) the image itself,
checked in a container with networking off."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import docker
import pytest

from cligym_env.errors import BuildError
from cligym_env.runtime.base import (
    BASE_PACKAGES,
    BASE_REPO,
    IMAGE_ENV,
    OFFLINE_APT_SOURCE,
    PIP_CONF,
    BaseSpec,
    base_image_name,
    build_base_image,
    cached_rootfs_path,
    debian_mirror,
    ensure_base_image,
    from_image_dockerfile,
    import_rootfs,
    write_packages_index,
)

# Reserved, never-resolving host names (RFC 2606): the parser is tested, no real mirror is named.
MIRROR = "http://mirror.example.invalid/debian"
OTHER = "http://other.example.invalid/debian"


@pytest.fixture
def apt_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("CLIGYM_DEBIAN_MIRROR", raising=False)
    (tmp_path / "sources.list.d").mkdir()
    return tmp_path


# --- mirror -------------------------------------------------------------------------------------------


def test_mirror_explicit_beats_env_beats_apt(apt_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (apt_dir / "sources.list").write_text(f"deb {OTHER} bookworm main\n")
    assert debian_mirror(apt_dir=apt_dir) == OTHER
    monkeypatch.setenv("CLIGYM_DEBIAN_MIRROR", MIRROR + "/")
    assert debian_mirror(apt_dir=apt_dir) == MIRROR
    assert debian_mirror("http://explicit.example.invalid/debian", apt_dir=apt_dir).startswith(
        "http://explicit"
    )


def test_mirror_from_one_line_sources_list(apt_dir: Path) -> None:
    (apt_dir / "sources.list").write_text(
        "# deb http://commented.example.invalid/debian bookworm main\n"
        "deb-src http://src.example.invalid/debian bookworm main\n"
        "deb http://security.example.invalid/debian-security bookworm-security main\n"
        "deb https://vendor.example.invalid/apt cloud-sdk-bookworm main\n"
        f"deb [arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {MIRROR}/ bookworm main\n"
        f"deb {OTHER} bookworm main\n"
    )
    assert debian_mirror(apt_dir=apt_dir) == MIRROR


def test_mirror_from_deb822_sources(apt_dir: Path) -> None:
    (apt_dir / "sources.list.d" / "debian.sources").write_text(
        "Types: deb-src\nURIs: http://src.example.invalid/debian\nSuites: bookworm\nComponents: main\n\n"
        "Types: deb\nURIs: http://security.example.invalid/debian-security\nSuites: bookworm-security\n"
        "Components: main\n\n"
        "Enabled: no\nTypes: deb\nURIs: http://disabled.example.invalid/debian\nSuites: bookworm\n\n"
        "Types: deb deb-src\n# a comment inside the stanza\nURIs:\n "
        f"{MIRROR}\n {OTHER}\nSuites: bookworm-updates bookworm\nComponents: main\n"
    )
    (apt_dir / "sources.list.d" / "vendor.sources").write_text(
        "Types: deb\nURIs: https://vendor.example.invalid/node\nSuites: nodistro\nComponents: main\n"
    )
    assert debian_mirror(apt_dir=apt_dir) == MIRROR


def test_mirror_sources_list_comes_before_sources_list_d(apt_dir: Path) -> None:
    (apt_dir / "sources.list").write_text(f"deb {OTHER} trixie main\n")
    (apt_dir / "sources.list.d" / "a.list").write_text(f"deb {MIRROR} bookworm main\n")
    (apt_dir / "sources.list.d" / "b.list.disabled").write_text(
        "deb http://x.example.invalid/debian sid main\n"
    )
    assert debian_mirror(apt_dir=apt_dir) == OTHER


def test_no_mirror_asks_for_one(apt_dir: Path) -> None:
    (apt_dir / "sources.list.d" / "vendor.list").write_text(
        "deb https://vendor.example.invalid/apt stable-x main\n"
    )
    with pytest.raises(BuildError, match="--mirror"):
        debian_mirror(apt_dir=apt_dir)


# --- tags and the Dockerfile route --------------------------------------------------------------------


def test_tag_is_stable_and_content_addressed() -> None:
    spec = BaseSpec()
    assert spec.tag() == BaseSpec().tag()
    assert spec.tag().startswith("bookworm-") and len(spec.tag()) == len("bookworm-") + 10
    assert BaseSpec(packages=tuple(reversed(BASE_PACKAGES))).tag() == spec.tag()
    changed = [
        BaseSpec(suite="trixie"),
        BaseSpec(packages=(*BASE_PACKAGES, "zsh")),
        BaseSpec(variant="buildd"),
        BaseSpec(arch="arm64"),
    ]
    assert len({spec.tag(), *(other.tag() for other in changed)}) == 1 + len(changed)
    assert base_image_name(spec) == f"{BASE_REPO}:{spec.tag()}"


def test_from_image_dockerfile() -> None:
    text = from_image_dockerfile("debian:bookworm-slim")
    assert text.startswith("FROM debian:bookworm-slim\n")
    assert all(f" {package} " in text or f" {package}\\" in text for package in BASE_PACKAGES)
    assert OFFLINE_APT_SOURCE.strip() in text and "dpkg-scanpackages" in text
    assert PIP_CONF.replace("\n", "\\n") in text
    assert f"PATH={IMAGE_ENV['PATH']}" in text
    assert f"LABEL cligym.base={BaseSpec().tag()}" in text and text.endswith('CMD ["bash"]\n')


# --- the local apt index --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_debs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two small real .deb files: from the base build's deb cache, else `apt-get download`."""
    repo = tmp_path_factory.mktemp("debs")
    wanted = ("sensible-utils", "base-passwd")
    cached = cached_rootfs_path().parent / "debs"
    for name in wanted:
        found = sorted(cached.glob(f"{name}_*.deb")) if cached.is_dir() else []
        if found:
            shutil.copy(found[0], repo)
    if len(list(repo.glob("*.deb"))) < len(wanted):
        if shutil.which("apt-get") is None:
            pytest.skip("no cached .deb files and no apt-get to download some")
        result = subprocess.run(
            ["apt-get", "-q", "-o", "APT::Sandbox::User=root", "download", *wanted],
            cwd=repo,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            pytest.skip(f"apt-get download failed: {result.stderr.strip()}")
    return repo


def _stanzas(text: str) -> list[dict[str, str]]:
    return [
        dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(" "))
        for block in text.strip().split("\n\n")
    ]


def test_packages_index_has_control_fields_and_checksums(small_debs: Path) -> None:
    packages = write_packages_index(small_debs)
    stanzas = _stanzas(packages.read_text())
    assert sorted(s["Package"] for s in stanzas) == ["base-passwd", "sensible-utils"]
    for stanza in stanzas:
        deb = small_debs / stanza["Filename"]
        data = deb.read_bytes()
        assert stanza["Filename"] == f"./{deb.name}" and deb.name.startswith(stanza["Package"] + "_")
        assert int(stanza["Size"]) == len(data)
        assert stanza["SHA256"] == hashlib.sha256(data).hexdigest()
        assert stanza["MD5sum"] == hashlib.md5(data).hexdigest()
        assert {"Version", "Architecture", "Description"} <= stanza.keys()
    assert gzip.decompress((small_debs / "Packages.gz").read_bytes()) == packages.read_bytes()
    release = (small_debs / "Release").read_text()
    assert hashlib.sha256(packages.read_bytes()).hexdigest() in release


@pytest.mark.skipif(shutil.which("apt-get") is None, reason="needs apt on the host")
def test_apt_reads_the_generated_repository(small_debs: Path, tmp_path: Path) -> None:
    """apt itself (with private state dirs) accepts the flat repository and offers its packages."""
    write_packages_index(small_debs)
    (tmp_path / "sources.list").write_text(f"deb [trusted=yes] file:{small_debs} ./\n")
    (tmp_path / "parts").mkdir()
    options = [
        f"-oDir::Etc::SourceList={tmp_path / 'sources.list'}",
        f"-oDir::Etc::SourceParts={tmp_path / 'parts'}",
        f"-oDir::State::Lists={tmp_path / 'lists'}",
        f"-oDir::Cache={tmp_path / 'cache'}",
        "-oAPT::Sandbox::User=root",
        "-oDebug::NoLocking=1",
    ]
    (tmp_path / "lists" / "partial").mkdir(parents=True)
    (tmp_path / "cache" / "archives" / "partial").mkdir(parents=True)
    update = subprocess.run(["apt-get", *options, "update"], capture_output=True, text=True)
    assert update.returncode == 0, update.stdout + update.stderr
    policy = subprocess.run(
        ["apt-cache", *options, "policy", "sensible-utils"], capture_output=True, text=True
    )
    assert f"file:{small_debs}" in policy.stdout, policy.stdout


# --- the image (slow) -----------------------------------------------------------------------------------


def test_unreachable_mirror_fails_with_the_log(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("needs root and debootstrap")
    spec = BaseSpec(packages=("less",))  # a spec no one builds, so no image short-circuits the call
    with pytest.raises(
        BuildError, match="debootstrap of bookworm from http://127.0.0.1:9/debian failed"
    ) as info:
        build_base_image(spec, mirror="http://127.0.0.1:9/debian", cache_dir=tmp_path, force=True)
    assert str(tmp_path / "base" / f"{spec.tag()}.debootstrap.log") in str(info.value)
    assert not list((tmp_path / "base").glob("*.rootfs.*")), "the scratch rootfs was left behind"
    assert not (tmp_path / "base" / f"{spec.tag()}.tar").exists()


@pytest.fixture(scope="module")
def built_base_image() -> str:
    """This module's own base image (built or reused), not conftest's prebuilt test image."""
    return ensure_base_image(progress=print)


@pytest.fixture(scope="module")
def offline_container(built_base_image: str):
    client = docker.from_env()
    container = client.containers.run(
        built_base_image, ["sleep", "infinity"], network_mode="none", detach=True
    )
    try:
        yield container
    finally:
        container.remove(force=True)


def _sh(container, script: str) -> tuple[int, str]:
    code, output = container.exec_run(["bash", "-c", script])
    return code, output.decode(errors="replace")


@pytest.mark.slow
def test_image_metadata(built_base_image: str) -> None:
    image = docker.from_env().images.get(built_base_image)
    assert f"{BASE_REPO}:latest" in image.tags
    assert image.labels["cligym.base"] == BaseSpec().tag()
    assert image.attrs["Config"]["Cmd"] == ["bash"]
    assert {f"{key}={value}" for key, value in IMAGE_ENV.items()} <= set(image.attrs["Config"]["Env"])


@pytest.mark.slow
def test_python_venv_and_offline_pip(offline_container) -> None:
    code, out = _sh(offline_container, "python3 -c 'import ssl, sqlite3, ctypes, venv; print(42)'")
    assert (code, out.strip()) == (0, "42")
    code, out = _sh(offline_container, "python3 -m venv /opt/venv && command -v python pip")
    assert code == 0 and out.split() == ["/opt/venv/bin/python", "/opt/venv/bin/pip"], out
    started = time.monotonic()
    code, out = _sh(offline_container, "timeout 120 pip install requests")
    assert code == 1 and "No matching distribution" in out, out
    assert time.monotonic() - started < 30, "pip waited on a network it does not have"


@pytest.mark.slow
def test_apt_works_offline(offline_container) -> None:
    code, out = _sh(offline_container, "cat /etc/apt/sources.list; ls /etc/apt/sources.list.d | wc -l")
    assert out.split("\n")[:2] == [OFFLINE_APT_SOURCE.strip(), "0"], out
    code, out = _sh(offline_container, "apt-get update && apt-get install --reinstall -y tzdata less 2>&1")
    assert code == 0, out
    code, out = _sh(offline_container, "apt-get install -y git make >/dev/null && apt-get check")
    assert code == 0, out


@pytest.mark.slow
def test_cli_tools_locale_and_timezone(offline_container) -> None:
    tools = "less git gcc g++ make patch file curl wget ps killall ip sudo xz unzip vi tar gzip"
    code, out = _sh(
        offline_container, f"for t in {tools}; do command -v $t >/dev/null || echo missing $t; done"
    )
    assert (code, out) == (0, ""), out
    code, out = _sh(offline_container, "locale -a; cat /etc/timezone; date +%Z; cat /etc/pip.conf")
    assert "C.utf8" in out and "Etc/UTC" in out and "UTC" in out and PIP_CONF in out, out
    code, out = _sh(offline_container, "ls /etc/machine-id /opt/wheelhouse /var/log/bootstrap.log 2>&1")
    missing = [line.split("'")[1] for line in out.splitlines() if "No such file" in line]
    assert missing == ["/etc/machine-id", "/var/log/bootstrap.log"], out


@pytest.mark.slow
def test_cached_tarball_reimports_in_seconds(built_base_image: str) -> None:
    tarball = cached_rootfs_path()
    assert tarball.is_file(), "the rootfs tarball should be cached after a build"
    client = docker.from_env()
    name = f"{BASE_REPO}:pytest-reimport"
    started = time.monotonic()
    try:
        import_rootfs(tarball, name)
        assert time.monotonic() - started < 120
        assert client.images.get(name).labels["cligym.base"] == BaseSpec().tag()
    finally:
        client.images.remove(name, force=True)
