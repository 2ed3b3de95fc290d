"""A flat Debian repository from a folder of .deb files, for apt to install from with networking off."""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import time
from pathlib import Path

from cligym_env.errors import BuildError


def write_packages_index(
    repo_dir: str | Path, *, chroot: str | Path | None = None, previous: str = ""
) -> Path:
    """Write ``Packages``, ``Packages.gz`` and ``Release`` for the .deb files in ``repo_dir``: a flat
    repository apt reads as ``deb [trusted=yes] file:<repo_dir> ./``. Fields come from ``dpkg-deb -f``
    (the one in ``chroot`` when given, with ``repo_dir`` inside it), so no dpkg-dev is needed.
    ``previous`` is the ``Packages`` text of a repository this one extends (an image layer adding debs
    to the base's ``/opt/debs``): its stanzas come first."""
    repo = Path(repo_dir)
    stanzas = [_packages_stanza(deb, chroot) for deb in sorted(repo.glob("*.deb"))]
    if not stanzas:
        raise BuildError(f"no .deb files in {repo} to index")
    if previous.strip():
        stanzas.insert(0, previous.strip("\n") + "\n")
    packages = "\n".join(stanzas).encode()
    (repo / "Packages").write_bytes(packages)
    (repo / "Packages.gz").write_bytes(gzip.compress(packages, mtime=0))
    date = time.strftime("%a, %d %b %Y %H:%M:%S UTC", time.gmtime())
    release = ["Origin: cligym", "Label: cligym offline base", f"Date: {date}"]
    for field, algo in (("MD5Sum", "md5"), ("SHA256", "sha256")):
        release.append(f"{field}:")
        for name in ("Packages", "Packages.gz"):
            data = (repo / name).read_bytes()
            release.append(f" {hashlib.new(algo, data).hexdigest()} {len(data)} {name}")
    (repo / "Release").write_text("\n".join(release) + "\n")
    return repo / "Packages"


def _packages_stanza(deb: Path, chroot: str | Path | None) -> str:
    """One Packages entry: the control fields plus where the file is and its checksums."""
    target = f"/{deb.resolve().relative_to(Path(chroot).resolve())}" if chroot else str(deb)
    command = (["chroot", str(chroot)] if chroot else []) + ["dpkg-deb", "-f", target]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BuildError(f"dpkg-deb could not read {deb.name}: {result.stderr.strip()}")
    data = deb.read_bytes()
    extra = (
        f"Filename: ./{deb.name}\nSize: {len(data)}\n"
        f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
    )
    return result.stdout.rstrip("\n") + "\n" + extra
