"""A `debian:` gold's build context: the upstream tarball of a Debian source package, unpacked into `src/`.

The `.dsc` and its files come from the pool of the Debian mirror the base image was made from; every file
is checked against the `.dsc`'s SHA-256. Debian's own patches are not applied: the gold is upstream's code
(for Perl modules, the CPAN tarball with its `t/`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from cligym_env.errors import BuildError
from cligym_env.gold import GoldSpec
from cligym_env.golds.fetch import download
from cligym_env.runtime.base import debian_mirror
from cligym_env.runtime.cache import cache_dir
from cligym_env.runtime.pypi import unpack_sdist


def pool_url(mirror: str, package: str, filename: str) -> str:
    """The pool address of a source package's file: `pool/main/libt/libtry-tiny-perl/<file>`."""
    prefix = package[:4] if package.startswith("lib") else package[0]
    return f"{mirror}/pool/main/{prefix}/{package}/{filename}"


def fetch_debian_source(package: str, version: str, dest: Path) -> list[Path]:
    """Download the `.dsc` of `package` `version` and its upstream tarball into `dest` (cached, verified)."""
    mirror = debian_mirror()
    upstream = version.split(":", 1)[-1]
    name = f"{package}_{upstream}.dsc"
    dsc = download(pool_url(mirror, package, name), dest / name)
    listed = _dsc_files(dsc.read_text(errors="replace"))
    # The upstream tarball(s) only: `.orig.tar.*` (and its components), or a native package's one tarball.
    wanted = [(s, n) for s, n in listed if ".orig" in n] or [(s, n) for s, n in listed if ".tar." in n]
    return [dsc] + [download(pool_url(mirror, package, n), dest / n, sha256=s) for s, n in wanted]


def _dsc_files(text: str) -> list[tuple[str, str]]:
    """(sha256, file name) of every file the .dsc lists."""
    files, inside = [], False
    for line in text.splitlines():
        if line.startswith("Checksums-Sha256:"):
            inside = True
        elif inside and line.startswith((" ", "\t")) and len(line.split()) == 3:
            files.append((line.split()[0], line.split()[2]))
        elif inside:
            break
    if not files:
        raise BuildError("the .dsc lists no files under Checksums-Sha256")
    return files


def add_debian_source(spec: GoldSpec, context: Path, say: Callable[[str], None]) -> None:
    """Fetch the source package and unpack its upstream tarball (`.orig.tar.*`, or the native tarball)."""
    package, version = spec.source.pin
    say(f"{spec.name}: fetching Debian source {package} {version}")
    files = fetch_debian_source(package, version, cache_dir("downloads", "debian"))
    tarballs = [f for f in files if ".orig.tar." in f.name] or [
        f for f in files if ".tar." in f.name and ".debian.tar." not in f.name
    ]
    if not tarballs:
        raise BuildError(f"{package} {version}: no upstream tarball among {[f.name for f in files]}")
    unpack_sdist(tarballs[0], context / "src")
