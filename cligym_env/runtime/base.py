"""The offline base image: a debootstrapped Debian rootfs imported into Docker, carrying a local apt
repository of every .deb it was built from and a pip pointed at a local wheelhouse, so that gold images
build, and their containers run, with networking off.

    >>> from cligym_env.runtime.base import ensure_base_image
    >>> ensure_base_image(progress=print)  # minutes the first time, seconds from the cached rootfs tarball
    'cligym/base:bookworm-1a2b3c4d5e'
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import docker
import docker.errors

from cligym_env.errors import BuildError
from cligym_env.runtime import cache
from cligym_env.runtime.containers import docker_client
from cligym_env.runtime.debrepo import write_packages_index

BASE_REPO = "cligym/base"
DEFAULT_SUITE = "bookworm"
# Bump when the recipe below changes in a way that changes the image, so cached tarballs are not reused.
BASE_RECIPE_VERSION = 3

# What every gold image needs, installed once here because nothing can be fetched later:
# Python with venv/pip/headers and a C toolchain (sdists with C extensions are built in gold images),
# git and patch (projects and faults), the CLI tools test suites shell out to (less as a pager, ps/killall,
# ip, file, archives, editors, curl/wget), strace (the gold runtime probe), and the headers common C
# extensions link against.
BASE_PACKAGES: tuple[str, ...] = (
    "python3", "python3-venv", "python3-pip", "python3-dev", "build-essential",
    "git", "ca-certificates", "less", "procps", "psmisc", "tzdata", "locales", "file", "patch",
    "make", "iproute2", "sudo", "xz-utils", "unzip", "curl", "wget", "vim-tiny", "strace",
    "libffi-dev", "libssl-dev", "zlib1g-dev",
)  # fmt: skip

OFFLINE_DEBS = "/opt/debs"
WHEELHOUSE = "/opt/wheelhouse"
OFFLINE_APT_SOURCE = f"deb [trusted=yes] file:{OFFLINE_DEBS} ./\n"
# Login shells (`bash -l`, how test commands run) reset PATH in /etc/profile; this puts the venv back first.
PROFILE_PATH_SCRIPT = (
    'case ":$PATH:" in *:/opt/venv/bin:*) ;; *) PATH="/opt/venv/bin:$PATH" ;; esac\nexport PATH\n'
)
PIP_CONF = f"[global]\nno-index = true\nfind-links = {WHEELHOUSE}\ndisable-pip-version-check = true\n"
IMAGE_ENV = {
    # Golds create /opt/venv (Debian's python3 is "externally managed"); it comes first once it exists.
    "PATH": "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "DEBIAN_FRONTEND": "noninteractive",
}
_DEBIAN_SUITES = {
    "stable", "testing", "unstable", "oldstable", "oldoldstable", "sid", "experimental",
    "jessie", "stretch", "buster", "bullseye", "bookworm", "trixie", "forky", "duke",
}  # fmt: skip
_MIRROR_SCHEMES = ("http://", "https://", "ftp://", "file:")
# debootstrap's lines about single packages; the stage lines around them are what a user wants to see.
_PER_PACKAGE_LINE = re.compile(
    r"I: (Chosen extractor|(Retrieving|Validating|Extracting|Unpacking|Configuring) "
    r"(?!(required |the |Packages\b|InRelease\b|Release\b)))"
)

Progress = Callable[[str], None]


@dataclass(frozen=True)
class BaseSpec:
    """What goes into a base image; its content hash names the image and the cached rootfs."""

    suite: str = DEFAULT_SUITE
    packages: tuple[str, ...] = BASE_PACKAGES
    variant: str = "minbase"
    arch: str = "amd64"

    def tag(self) -> str:
        """A stable tag such as ``bookworm-1a2b3c4d5e``; package order and duplicates do not matter."""
        fields = asdict(self) | {"packages": sorted(set(self.packages)), "recipe": BASE_RECIPE_VERSION}
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        return f"{self.suite}-{digest[:10]}"


def base_image_name(spec: BaseSpec = BaseSpec()) -> str:
    """The image name for ``spec``, e.g. ``cligym/base:bookworm-1a2b3c4d5e``."""
    return f"{BASE_REPO}:{spec.tag()}"


def cached_rootfs_path(spec: BaseSpec = BaseSpec(), cache_dir: str | Path | None = None) -> Path:
    """Where the rootfs tarball of ``spec`` is cached (it may not exist yet)."""
    return _cache_root(cache_dir) / f"{spec.tag()}.tar"


# --- mirror -------------------------------------------------------------------------------------------


def debian_mirror(explicit: str | None = None, *, apt_dir: str | Path = "/etc/apt") -> str:
    """The Debian mirror to debootstrap from: ``explicit`` > ``$CLIGYM_DEBIAN_MIRROR`` > this machine's
    apt sources (the first Debian suite that is not -security) > an error asking for ``--mirror``."""
    for candidate in (explicit, os.environ.get("CLIGYM_DEBIAN_MIRROR")):
        if candidate:
            return candidate.rstrip("/")
    for uri, suite in _apt_sources(Path(apt_dir)):
        name, _, pocket = suite.partition("-")
        debian = name in _DEBIAN_SUITES and pocket in ("", "updates", "backports", "proposed-updates")
        if debian and uri.startswith(_MIRROR_SCHEMES) and "security" not in uri:
            return uri.rstrip("/")
    raise BuildError(
        f"no Debian mirror found in {apt_dir}/sources.list or sources.list.d/: "
        "pass --mirror URL (or set CLIGYM_DEBIAN_MIRROR)"
    )


def _apt_sources(apt_dir: Path) -> Iterator[tuple[str, str]]:
    """(uri, suite) of every enabled binary source, in the order apt reads the files."""
    files = [apt_dir / "sources.list"]
    if (apt_dir / "sources.list.d").is_dir():
        files += sorted((apt_dir / "sources.list.d").iterdir())
    for path in files:
        if not path.is_file():
            continue
        text = path.read_text(errors="replace")
        if path.name.endswith(".list"):
            yield from _one_line_sources(text)
        elif path.name.endswith(".sources"):
            yield from _deb822_sources(text)


def _one_line_sources(text: str) -> Iterator[tuple[str, str]]:
    for line in text.splitlines():
        match = re.match(r"\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)", line.split("#", 1)[0])
        if match:
            yield match.group(1), match.group(2)


def _deb822_sources(text: str) -> Iterator[tuple[str, str]]:
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    for stanza in re.split(r"\n\s*\n", "\n".join(lines)):
        fields: dict[str, str] = {}
        for key, value in re.findall(r"^(\S[^:\n]*):[ \t]*(.*(?:\n[ \t].*)*)", stanza, re.M):
            fields[key.strip().lower()] = " ".join(value.split())
        if "deb" not in fields.get("types", "").split() or fields.get("enabled", "yes").lower() == "no":
            continue
        for uri in fields.get("uris", "").split():
            for suite in fields.get("suites", "").split():
                yield uri, suite


# --- the local apt repository -------------------------------------------------------------------------


# --- building -----------------------------------------------------------------------------------------


def build_base_image(
    spec: BaseSpec = BaseSpec(),
    *,
    mirror: str | None = None,
    cache_dir: str | Path | None = None,
    from_image: str | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> str:
    """Make the base image for ``spec`` and tag it ``cligym/base:<tag>`` and ``cligym/base:latest``.

    Returns at once when the image exists (unless ``force``); imports the cached rootfs tarball when there
    is one (seconds); otherwise debootstraps from ``mirror`` (see :func:`debian_mirror`; minutes, needs
    root and debootstrap) and caches the tarball under ``cache_dir`` (default ``$CLIGYM_CACHE`` or
    ``~/.cache/cligym``). ``from_image`` builds ``FROM`` that image instead, where a registry is reachable.
    ``force`` bootstraps again (new package versions) rather than reusing the image or the tarball.
    """
    say = progress or (lambda _line: None)
    client = docker_client()
    name = base_image_name(spec)
    previous = _image_id(client, name)
    if previous and not force:
        return name
    if from_image:
        _build_from_image(client, spec, from_image, say)
    else:
        cache = _cache_root(cache_dir)
        with _locked(cache / f"{spec.tag()}.lock"):
            if not force and _image_id(client, name):  # another process built it while we waited
                return name
            tarball = cache / f"{spec.tag()}.tar"
            if force or not tarball.exists():
                _bootstrap_tarball(spec, debian_mirror(mirror), tarball, say)
            say(f"importing {tarball} as {name}")
            import_rootfs(tarball, name, spec, client=client)
    image = client.images.get(name)
    image.tag(BASE_REPO, "latest")
    if previous and previous != image.id:  # a forced rebuild: drop the old one unless something uses it
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(previous)
    say(f"base image ready: {name}")
    return name


def ensure_base_image(
    spec: BaseSpec = BaseSpec(),
    *,
    mirror: str | None = None,
    cache_dir: str | Path | None = None,
    progress: Progress | None = None,
) -> str:
    """The base image name for ``spec``, building it first if this machine lacks it."""
    return build_base_image(spec, mirror=mirror, cache_dir=cache_dir, progress=progress)


def import_rootfs(
    tarball: str | Path, name: str, spec: BaseSpec = BaseSpec(), *, client: docker.DockerClient | None = None
) -> str:
    """``docker import`` a rootfs tarball as ``name`` with the base image's ENV, CMD and label."""
    client = client or docker_client()
    repository, _, tag = name.rpartition(":")
    changes = [f"ENV {key}={value}" for key, value in IMAGE_ENV.items()]
    changes += ['CMD ["bash"]', f"LABEL cligym.base={spec.tag()}"]
    try:
        output = client.api.import_image_from_file(
            str(tarball), repository=repository, tag=tag, changes=changes
        )
    except docker.errors.APIError as exc:
        raise BuildError(f"docker import of {tarball} failed: {exc.explanation or exc}") from exc
    if '"error"' in str(output):
        raise BuildError(f"docker import of {tarball} failed: {output}")
    return name


def _bootstrap_tarball(spec: BaseSpec, mirror: str, tarball: Path, say: Progress) -> None:
    """debootstrap ``spec`` into a scratch dir, make it work offline, and tar it to ``tarball`` atomically."""
    if shutil.which("debootstrap") is None:
        raise BuildError("debootstrap is not installed: install it (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise BuildError("debootstrap needs root: run `cligym base build` as root (or with sudo)")
    cache = tarball.parent
    for stale in cache.glob(f"{spec.tag()}.rootfs.*"):  # left by an interrupted build; we hold the lock
        _remove_rootfs(stale)
    scratch = Path(tempfile.mkdtemp(prefix=f"{spec.tag()}.rootfs.", dir=cache))
    try:
        root = scratch / "root"
        _debootstrap(spec, mirror, root, cache / f"{spec.tag()}.debootstrap.log", say)
        say("making the rootfs work offline (local apt repository, pip config)")
        _make_offline(root)
        say(f"packing the rootfs into {tarball}")
        _tar_rootfs(root, tarball)
    finally:
        _remove_rootfs(scratch)


def _debootstrap(spec: BaseSpec, mirror: str, root: Path, log_path: Path, say: Progress) -> None:
    debs = log_path.parent / "debs"  # kept across builds: a changed package list downloads only new debs
    debs.mkdir(parents=True, exist_ok=True)
    command = [
        "debootstrap", f"--variant={spec.variant}", f"--arch={spec.arch}", f"--cache-dir={debs}",
        f"--include={','.join(spec.packages)}", spec.suite, str(root), mirror,
    ]  # fmt: skip
    say(f"debootstrap {spec.suite} from {mirror} (a few minutes; log: {log_path})")
    started = time.monotonic()
    with open(log_path, "w") as log:
        log.write(" ".join(command) + "\n")
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            if line.startswith("I: ") and not _PER_PACKAGE_LINE.match(line):
                say(f"[{time.monotonic() - started:4.0f}s] {line.strip()}")
        inner_log = root / "debootstrap" / "debootstrap.log"
        if proc.wait() != 0 and inner_log.exists():
            log.write(f"\n--- {inner_log} ---\n{inner_log.read_text(errors='replace')}")
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-15:])
        raise BuildError(
            f"debootstrap of {spec.suite} from {mirror} failed (exit {proc.returncode}); is the mirror "
            f"reachable? Pass --mirror to use another. Full log: {log_path}\n{tail}"
        )


def _make_offline(root: Path) -> None:
    """Turn the fresh rootfs into one that installs debs and wheels without a network."""
    debs = root / OFFLINE_DEBS.lstrip("/")
    debs.mkdir(parents=True)
    for deb in (root / "var/cache/apt/archives").glob("*.deb"):
        shutil.move(deb, debs / deb.name)
    write_packages_index(debs, chroot=root)
    (root / "etc/apt/sources.list").write_text(OFFLINE_APT_SOURCE)
    for path in [*(root / "etc/apt/sources.list.d").glob("*"), *(root / "var/lib/apt/lists").glob("*_*")]:
        path.unlink()
    for path in (root / "var/cache/apt").glob("*.bin"):
        path.unlink()
    _chroot(root, "apt-get", "-q", "update")  # so the lists exist: apt works in a container straight away
    (root / "etc/pip.conf").write_text(PIP_CONF)
    (root / "etc/profile.d/00-cligym-path.sh").write_text(PROFILE_PATH_SCRIPT)
    (root / WHEELHOUSE.lstrip("/")).mkdir(parents=True)
    (root / "etc/timezone").write_text("Etc/UTC\n")
    localtime = root / "etc/localtime"
    localtime.unlink(missing_ok=True)
    localtime.symlink_to("/usr/share/zoneinfo/Etc/UTC")
    # Services must not start when golds apt-get install a daemon inside a container build.
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    # The host's identity and build traces do not belong in the image; Docker mounts resolv.conf/hostname.
    for name in ("etc/machine-id", "var/lib/dbus/machine-id", "var/log/bootstrap.log"):
        (root / name).unlink(missing_ok=True)
    for name in ("etc/resolv.conf", "etc/hostname", "var/log/dpkg.log", "var/log/alternatives.log"):
        (root / name).write_text("")
    for path in [*(root / "var/log/apt").glob("*"), *(root / "tmp").glob("*")]:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _chroot(root: Path, *command: str) -> None:
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8", "DEBIAN_FRONTEND": "noninteractive"}
    result = subprocess.run(["chroot", str(root), *command], capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise BuildError(f"`{' '.join(command)}` failed in the new rootfs:\n{result.stdout}{result.stderr}")


def _tar_rootfs(root: Path, tarball: Path) -> None:
    partial = tarball.with_name(f"{tarball.name}.{os.getpid()}.partial")
    command = [
        "tar", "--create", f"--file={partial}", f"--directory={root}", "--numeric-owner", "--sort=name",
        "--xattrs", "--xattrs-include=*", "--exclude=./dev/*", "--exclude=./proc/*", "--exclude=./sys/*", ".",
    ]  # fmt: skip
    try:
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuildError(f"tar of the rootfs failed: {result.stderr.strip()}")
        os.replace(partial, tarball)
    finally:
        partial.unlink(missing_ok=True)


def _remove_rootfs(path: Path) -> None:
    """Delete a scratch rootfs, unmounting anything debootstrap left mounted in it first (rmtree would
    otherwise walk into a bind-mounted /dev or /proc of the host)."""
    prefix = str(path.resolve()) + "/"
    for mountpoint in sorted(_mountpoints(prefix), reverse=True):
        subprocess.run(["umount", "-l", mountpoint], capture_output=True)
    if _mountpoints(prefix):
        raise BuildError(f"{path} still has mounts under it; unmount them and delete it by hand")
    shutil.rmtree(path, ignore_errors=True)


def _mountpoints(prefix: str) -> list[str]:
    points = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()]
    decoded = [re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), p) for p in points]
    return [p for p in decoded if p.startswith(prefix)]


# --- building FROM a registry image ---------------------------------------------------------------------


def from_image_dockerfile(from_image: str, spec: BaseSpec = BaseSpec()) -> str:
    """The Dockerfile that makes the same base from a registry image (e.g. ``debian:bookworm``): install
    ``spec.packages``, keep every installed package's .deb as the local repository, same pip/apt config."""
    pip_conf = PIP_CONF.replace("\n", "\\n")
    profile = PROFILE_PATH_SCRIPT.replace("\n", "\\n")
    env = " ".join(f"{key}={value}" for key, value in IMAGE_ENV.items())
    return (
        f"FROM {from_image}\n"
        f"ENV {env}\n"
        "RUN rm -f /etc/apt/apt.conf.d/docker-clean \\\n"
        " && apt-get update \\\n"
        f" && apt-get install -y --no-install-recommends dpkg-dev {' '.join(spec.packages)} \\\n"
        " && apt-get install -y --reinstall --download-only $(dpkg-query -W -f '${binary:Package} ') \\\n"
        f" && mkdir -p {OFFLINE_DEBS} {WHEELHOUSE} && mv /var/cache/apt/archives/*.deb {OFFLINE_DEBS}/ \\\n"
        f" && cd {OFFLINE_DEBS} && dpkg-scanpackages --multiversion . > Packages && gzip -kn9 Packages \\\n"
        f" && rm -rf /etc/apt/sources.list.d/* /var/lib/apt/lists/* \\\n"
        f" && printf '{OFFLINE_APT_SOURCE.strip()}\\n' > /etc/apt/sources.list && apt-get update \\\n"
        f" && printf '{pip_conf}' > /etc/pip.conf \\\n"
        f" && printf '{profile}' > /etc/profile.d/00-cligym-path.sh \\\n"
        " && echo Etc/UTC > /etc/timezone && ln -sf /usr/share/zoneinfo/Etc/UTC /etc/localtime\n"
        f"LABEL cligym.base={spec.tag()}\n"
        'CMD ["bash"]\n'
    )


def _build_from_image(client: docker.DockerClient, spec: BaseSpec, from_image: str, say: Progress) -> None:
    say(f"building {base_image_name(spec)} FROM {from_image}")
    dockerfile = io.BytesIO(from_image_dockerfile(from_image, spec).encode())
    try:
        client.images.build(fileobj=dockerfile, tag=base_image_name(spec), rm=True, forcerm=True)
    except docker.errors.BuildError as exc:
        log = "".join(str(chunk.get("stream", chunk.get("error", ""))) for chunk in exc.build_log)
        raise BuildError(f"building the base FROM {from_image} failed:\n{log[-3000:]}") from exc


# --- small helpers ----------------------------------------------------------------------------------------


def _image_id(client: docker.DockerClient, name: str) -> str | None:
    try:
        return client.images.get(name).id
    except docker.errors.ImageNotFound:
        return None


def _cache_root(cache_dir: str | Path | None) -> Path:
    if cache_dir is None:
        return cache.cache_dir("base")
    path = Path(cache_dir).expanduser().resolve() / "base"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock so two processes never bootstrap the same base at once."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
