"""Real releases of a Python distribution, read from PyPI on the host, and their wheels, cached for offline builds.

A version-skew fault installs a real older or newer release of one dependency (`families/versions.py`). The
image has no network, so the wheel is downloaded here, into `~/.cache/cligym/wheels/`, and copied into the
build. Only final releases (no pre-, post- or dev releases) with a wheel the image's Python 3.11 on x86-64
glibc can install are offered: a pure-Python wheel, or a manylinux x86_64 one for CPython 3.11 (or abi3), none
of them yanked, none above `MAX_WHEEL_BYTES`.

    >>> releases = releases_of("freezegun")                     # one HTTP request, then cached for a day
    >>> [r.version for r in downgrades("1.5.5", releases)]      # previous series, a 2-year-old lock file
    ['1.4.0', '1.2.2', '0.3.15']
    >>> fetch_wheel(releases[-1])                               # -> ~/.cache/cligym/wheels/freezegun-….whl
"""

from __future__ import annotations

import email.parser
import json
import re
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from urllib.parse import urljoin

from cligym_env.errors import CligymError
from cligym_env.golds.fetch import download
from cligym_env.runtime.cache import cache_dir
from cligym_env.runtime.pypi import _PLATFORMS, IMAGE_PYTHON

try:
    from packaging.requirements import Requirement
except ImportError:  # not a dependency of cligym's; pip, which the host has, vendors it
    from pip._vendor.packaging.requirements import Requirement

PYPI_JSON = "https://pypi.org/pypi/{name}/json"
TIMEOUT = 30.0
MAX_WHEEL_BYTES = 2 << 20
"""Larger wheels (numpy, matplotlib, Pillow) are left out: they would weigh on every build context."""
LOCK_FILE_AGE = 2.0
"""Years: a downgrade to what a lock file this old would pin is one of those offered."""
INDEX_TTL = 24 * 3600
"""Seconds a listing of releases is reused from the cache before PyPI is asked again."""
_FINAL = re.compile(r"\d+(?:\.\d+)*")
_CLAUSE = re.compile(r"(~=|===|==|!=|<=|>=|<|>)\s*(\d+(?:\.\d+)*)(\.\*)?")


@dataclass(frozen=True)
class Release:
    """One final release of a distribution and the wheel of it the image would install."""

    name: str
    version: str
    filename: str
    url: str
    sha256: str
    size: int
    uploaded: str = ""
    """The day the wheel was uploaded (`2024-03-31`): a release that old is what an old lock file pins."""


def version_key(version: str) -> tuple[int, ...] | None:
    """The numeric key of a final release (`1.4.0` -> (1, 4, 0)); None for pre-, post- and dev releases."""
    return tuple(int(p) for p in version.split(".")) if _FINAL.fullmatch(version) else None


def releases_of(name: str, python: str = IMAGE_PYTHON, timeout: float = TIMEOUT) -> list[Release]:
    """Installable final releases of `name` on PyPI, oldest first (cached for `INDEX_TTL` seconds, and used
    longer while PyPI cannot be reached).

    Raises CligymError when PyPI cannot be reached and nothing is cached, or does not know `name`.
    """
    cache = cache_dir("wheels", "index-v2") / f"{_normal(name)}-py{python}.json"
    if cache.exists() and time.time() - cache.stat().st_mtime < INDEX_TTL:
        return [Release(**r) for r in json.loads(cache.read_text())]
    url = PYPI_JSON.format(name=_normal(name))
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = json.load(response)
    except urllib.error.HTTPError as exc:
        raise CligymError(f"PyPI has no project {name!r} ({url}: HTTP {exc.code})") from None
    except (OSError, ValueError) as exc:
        if cache.exists():  # offline: the last listing stands (its wheels are likely cached too)
            return [Release(**r) for r in json.loads(cache.read_text())]
        raise CligymError(
            f"cannot list the releases of {name!r} on PyPI ({url}: {exc}); is the host online?"
        ) from None
    found = installable_releases(name, data, python, base=url)
    partial = cache.with_suffix(".partial")
    partial.write_text(json.dumps([asdict(r) for r in found]))
    partial.replace(cache)
    return found


def installable_releases(name: str, data: dict, python: str = IMAGE_PYTHON, base: str = "") -> list[Release]:
    """From PyPI's JSON for `name`: per final release, the wheel the image can install, oldest first.

    A pure-Python wheel is preferred over a compiled one; a release with none, or only yanked ones, is left out.
    File URLs are resolved against `base` (the JSON's own URL: a mirror may give them relative).
    """
    out = []
    for version, files in (data.get("releases") or {}).items():
        if version_key(version) is None:
            continue
        wheels = [
            f for f in files
            if f.get("packagetype") == "bdist_wheel" and not f.get("yanked")
            and 0 < int(f.get("size") or 0) <= MAX_WHEEL_BYTES and f.get("digests", {}).get("sha256")
            and wheel_fits(f["filename"], python) and python_fits(f.get("requires_python"), python)
        ]  # fmt: skip
        if wheels:
            best = min(wheels, key=lambda f: (not f["filename"].endswith("-none-any.whl"), f["filename"]))
            uploaded = (best.get("upload_time_iso_8601") or best.get("upload_time") or "")[:10]
            url = urljoin(base, best["url"])
            out.append(Release(name, version, best["filename"], url, best["digests"]["sha256"], int(best["size"]),
                               uploaded))  # fmt: skip
    return sorted(out, key=lambda r: version_key(r.version))


def wheel_fits(filename: str, python: str = IMAGE_PYTHON) -> bool:
    """Whether the image's CPython (`python`, e.g. "3.11") on x86-64 glibc can install this wheel, by its tags."""
    parts = filename.removesuffix(".whl").split("-")
    if len(parts) < 5:
        return False
    pythons, abis, platforms = (set(p.split(".")) for p in parts[-3:])
    minor = int(python.split(".")[1])
    if "any" in platforms:  # pure Python: py3, py3X with X up to ours, or our own CPython tag
        return "none" in abis and any(_py_tag_fits(t, minor) for t in pythons)
    if not platforms & set(_PLATFORMS):
        return False
    if f"cp3{minor}" in abis:
        return f"cp3{minor}" in pythons
    if "abi3" in abis:
        return any(t.startswith("cp3") and t[3:].isdigit() and int(t[3:]) <= minor for t in pythons)
    return "none" in abis and any(_py_tag_fits(t, minor) for t in pythons)


def _py_tag_fits(tag: str, minor: int) -> bool:
    if tag in ("py3", f"cp3{minor}"):
        return True
    return tag.startswith("py3") and tag[3:].isdigit() and int(tag[3:]) <= minor


def python_fits(requires_python: str | None, python: str = IMAGE_PYTHON) -> bool:
    """Whether `python` satisfies a wheel's Requires-Python (`>=3.8, !=3.9.*`); an unreadable clause: no."""
    have = tuple(int(p) for p in python.split(".")[:3])
    for clause in filter(None, (c.strip() for c in (requires_python or "").split(","))):
        match = _CLAUSE.fullmatch(clause)
        if not match:
            return False
        op, text, star = match.groups()
        want = tuple(int(p) for p in text.split("."))
        if star or op == "~=":  # prefix match: ==3.*, !=3.9.*, ~=3.8 (>=3.8 and ==3.*)
            prefix = want[:-1] if op == "~=" else want
            same = have[: len(prefix)] == prefix
            ok = {"==": same, "!=": not same, "~=": same and _cmp(have, want) >= 0}.get(op, False)
        else:
            c = _cmp(have, want)
            ok = {
                "==": c == 0,
                "===": c == 0,
                "!=": c != 0,
                "<": c < 0,
                "<=": c <= 0,
                ">": c > 0,
                ">=": c >= 0,
            }[op]
        if not ok:
            return False
    return True


def _cmp(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    n = max(len(a), len(b))
    a, b = a + (0,) * (n - len(a)), b + (0,) * (n - len(b))
    return (a > b) - (a < b)


def downgrades(installed: str, releases: list[Release], years: float = LOCK_FILE_AGE) -> list[Release]:
    """Realistic older releases: the last of the previous minor series, what a lock file `years` old would pin
    (the newest release uploaded that long before the installed one), and the last of the previous major series.

    `4.4.0` -> the newest 4.3.x (or older 4.x), the 4.x of two years before, the newest 3.x; calendar versions
    the same way.
    """
    have = _installed_key(installed)
    if have is None:
        return []
    older = [r for r in releases if _series(r.version) < have]
    minor = [r for r in older if _series(r.version)[0] == have[0]]
    major = [r for r in older if _series(r.version)[0] < have[0]]
    current = next((r.uploaded for r in releases if r.version == installed and r.uploaded), "")
    dated = [r for r in older if r.uploaded and current and _days(r.uploaded, current) >= 365 * years]
    return _distinct([last[-1] if last else None for last in (minor, dated, major)])


def upgrades(installed: str, releases: list[Release]) -> list[Release]:
    """Realistic newer releases, when `installed` is not the newest: the last of the next series, and the newest."""
    have = _installed_key(installed)
    if have is None:
        return []
    newer = [r for r in releases if _series(r.version) > have]
    if not newer:
        return []
    following = [r for r in newer if _series(r.version) == _series(newer[0].version)]
    return _distinct([following[-1], newer[-1]])


def _days(earlier: str, later: str) -> int:
    return (date.fromisoformat(later) - date.fromisoformat(earlier)).days


def _installed_key(installed: str) -> tuple[int, int] | None:
    """The (major, minor) series of an installed version (`2026.3.post1` -> (2026, 3))."""
    match = re.match(r"\d+(?:\.\d+)*", installed)
    return _series(match.group(0)) if match else None


def _series(version: str) -> tuple[int, int]:
    return (version_key(version) + (0, 0))[:2]


def _distinct(found: list[Release | None]) -> list[Release]:
    return list({r.version: r for r in found if r is not None}.values())


def fetch_wheel(release: Release, timeout: float = 120) -> Path:
    """The wheel of `release` in the cache (`~/.cache/cligym/wheels/`), downloaded and checked (SHA-256) once."""
    return download(
        release.url, cache_dir("wheels") / release.filename, sha256=release.sha256, timeout=timeout
    )


def unmet_requirements(release: Release, installed: dict[str, str], python: str = "3.11.2") -> list[str]:
    """Requirements of `release` that the `installed` distributions (name -> version) do not meet in the image
    (markers evaluated for CPython `python` on Linux, no extras): installed with `--no-deps`, a release with any
    would fail on a missing module, not on the version skew it stands for."""
    environment = {
        "python_version": ".".join(python.split(".")[:2]), "python_full_version": python, "os_name": "posix",
        "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64", "extra": "",
        "implementation_name": "cpython", "platform_python_implementation": "CPython",
    }  # fmt: skip
    have = {_normal(name): version for name, version in installed.items()}
    unmet = []
    for text in requirements_of(release):
        try:
            requirement = Requirement(text)
            if requirement.marker and not requirement.marker.evaluate(environment):
                continue
            version = have.get(_normal(requirement.name))
            if version is None or not requirement.specifier.contains(version, prereleases=True):
                unmet.append(text)
        except ValueError:  # an unreadable requirement or version: counted as unmet
            unmet.append(text)
    return unmet


def requirements_of(release: Release) -> list[str]:
    """The Requires-Dist lines of a release's wheel: from PyPI's metadata file (PEP 658), else from the wheel
    itself; cached."""
    cache = cache_dir("wheels", "metadata") / f"{release.filename}.metadata"
    if not cache.exists():
        try:
            download(release.url + ".metadata", cache, timeout=TIMEOUT)
        except CligymError:  # no metadata file for this wheel: read the wheel's own
            try:
                with zipfile.ZipFile(fetch_wheel(release)) as wheel:
                    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
                    cache.write_bytes(wheel.read(name))
            except (zipfile.BadZipFile, StopIteration) as exc:
                raise CligymError(f"{release.filename}: no readable METADATA ({exc!r})") from None
    headers = email.parser.Parser().parsestr(
        cache.read_text(encoding="utf-8", errors="replace"), headersonly=True
    )
    return headers.get_all("Requires-Dist") or []


def _normal(name: str) -> str:
    """The PEP 503 normalized name (what PyPI's URLs use)."""
    return re.sub(r"[-_.]+", "-", name).lower()
