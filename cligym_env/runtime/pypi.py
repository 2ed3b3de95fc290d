"""Fetch Python distributions on the host, for offline image builds (the image's Python is 3.11 on x86-64 glibc)."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from cligym_env.errors import BuildError

IMAGE_PYTHON = "3.11"
# pip matches --platform tags exactly, so list every glibc level up to the image's (Debian bookworm: glibc 2.36).
_PLATFORMS = ["linux_x86_64", "manylinux1_x86_64", "manylinux2010_x86_64", "manylinux2014_x86_64"] + [
    f"manylinux_2_{n}_x86_64" for n in range(5, 37)
]
WHEEL_TARGET_ARGS = [
    "--only-binary=:all:",
    "--python-version",
    IMAGE_PYTHON,
    "--implementation",
    "cp",
    "--abi",
    "cp311",
    "--abi",
    "abi3",
    "--abi",
    "none",
    *(arg for platform in _PLATFORMS for arg in ("--platform", platform)),
]


def pip_output(args: list[str], what: str) -> str:
    """Run pip with `args` on the host; its standard output (BuildError naming `what` when it fails)."""
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BuildError(f"{what} failed (pip exit {proc.returncode}):\n{tail}")
    return proc.stdout


def fetch_sdist(requirement: str, dest: Path) -> Path:
    """Download the sdist of a pinned `name==version` into `dest` (cached: an existing file is reused)."""
    name, _, version = requirement.partition("==")
    found = _find_sdist(dest, name, version)
    if found:
        return found
    pip_output(
        ["download", "--no-deps", "--no-binary", name, requirement, "-d", str(dest)],
        f"downloading sdist {requirement}",
    )
    found = _find_sdist(dest, name, version)
    if not found:
        raise BuildError(f"pip downloaded no sdist for {requirement} into {dest}")
    return found


def _find_sdist(dest: Path, name: str, version: str) -> Path | None:
    norm = name.lower().replace("-", "_").replace(".", "_")
    for path in sorted(dest.glob("*")):
        stem = path.name.lower().replace("-", "_").replace(".", "_")
        if stem.startswith(f"{norm}_{version.replace('.', '_')}") and path.name.endswith(
            (".tar.gz", ".zip", ".tgz")
        ):
            return path
    return None


def build_wheel(sdist: Path, dest: Path) -> Path:
    """Build a wheel from `sdist` on the host into `dest` (cached by sdist name)."""
    marker = dest / f".{sdist.name}.built"
    if marker.exists():
        wheel = dest / marker.read_text().strip()
        if wheel.exists():
            return wheel
    # A private output folder: builds running in parallel must not see each other's wheels.
    with tempfile.TemporaryDirectory(prefix=".build-", dir=dest) as tmp:
        pip_output(["wheel", "--no-deps", "-w", tmp, str(sdist)], f"building a wheel from {sdist.name}")
        built = sorted(Path(tmp).glob("*.whl"))
        if not built:
            raise BuildError(f"pip wheel produced no wheel for {sdist.name}")
        wheel = dest / built[0].name
        os.replace(built[0], wheel)
    marker.write_text(wheel.name)
    return wheel


def download_wheels(requirements: list[str], dest: Path) -> list[Path]:
    """Download binary wheels for the image's Python of `requirements` and all their dependencies into `dest`."""
    if not requirements:
        return []
    out = pip_output(
        ["download", *WHEEL_TARGET_ARGS, "-d", str(dest), *requirements], f"downloading wheels {requirements}"
    )
    return sorted(dest.glob("*.whl")) if out is not None else []


def unpack_sdist(sdist: Path, dest: Path) -> None:
    """Unpack `sdist` into `dest`, dropping its single top-level folder."""
    dest.mkdir(parents=True, exist_ok=True)
    if sdist.name.endswith(".zip"):
        with zipfile.ZipFile(sdist) as zf:
            names = zf.namelist()
            top = names[0].split("/")[0] + "/"
            for info in zf.infolist():
                rel = info.filename[len(top) :] if info.filename.startswith(top) else info.filename
                if not rel or info.is_dir():
                    continue
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(zf.read(info))
        return
    with tarfile.open(sdist) as tf:
        members = []
        for member in tf.getmembers():
            parts = member.name.split("/", 1)
            if len(parts) < 2 or not parts[1] or member.issym() or member.islnk():
                continue
            member.name = parts[1]
            members.append(member)
        tf.extractall(dest, members=members, filter="data")
