"""Version skew: one installed dependency replaced by a real older or newer release from PyPI.

The classic "works on my machine" fault: the project's code (or its tests, through a plugin like freezegun or
hypothesis) meets a release of a library it was not written against, so typically only the tests that use the
changed API fail. The wheel is fetched on the host (`inversion/wheels.py`) and copied into the image, since
the image has no network; the repair reinstalls the gold's version from the image's own wheelhouse.

The two families are one engine run on two rows (`SKEWS`): which releases to offer, and how a user would
describe what they see.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from dataclasses import dataclass

from cligym_env.errors import CligymError
from cligym_env.inversion import wheels
from cligym_env.inversion.families.base import Context, Fault, FaultFamily, q
from cligym_env.inversion.families.python_env import _targets_dists
from cligym_env.task import FILES_DIR


@dataclass(frozen=True)
class Skew:
    """One direction of version skew: its family name, the releases it offers, what a user sees."""

    name: str
    direction: str
    choose: Callable[[str, list[wheels.Release]], list[wheels.Release]]
    """(installed version, installable releases) -> the releases to offer, at most a few."""
    symptoms: tuple[str, ...]
    """Phrasings of the symptom, never naming the package or a version: one is the hint, the rest vary it."""


SKEWS = (
    Skew(
        "dependency-version-downgrade",
        "replace an installed dependency or test plugin by the last release of an older series, from PyPI",
        wheels.downgrades,
        (
            "Some tests fail inside a third-party package the project uses, although that package is installed "
            "and imports fine.",
            "The code calls into an installed library in a way the library does not seem to support.",
            "The same checkout passes on a colleague's machine; something installed here does not match what "
            "the project was written against.",
            "Failures point at missing names or unexpected arguments in an installed package, not in the "
            "project's own code.",
        ),
    ),
    Skew(
        "dependency-version-upgrade",
        "replace an installed dependency or test plugin by a newer release from PyPI",
        wheels.upgrades,
        (
            "An installed library imports fine but behaves differently from what the project expects.",
            "Some tests trip over changed behaviour or removed features of a third-party package.",
            "The same checkout passes on a colleague's machine; a package installed here seems to be ahead of "
            "what the project supports.",
            "Deprecation warnings or changed results from an installed library show up in the failures.",
        ),
    ),
)


class VersionSkew(FaultFamily):
    """A family that installs, with `pip --no-deps`, another real release of one distribution the tests load."""

    category = "dependencies-runtime"

    def __init__(self, skew: Skew):
        self.skew = skew
        self.name, self.direction = skew.name, skew.direction

    def targets(self, ctx: Context) -> list[str]:
        """`dist==version` for each release offered whose own requirements the environment meets (PyPI
        unreachable: no targets, never an error)."""
        out = []
        installed = {name: info["version"] for name, info in ctx.probe.dists.items()}
        for dist in skewable_dists(ctx):
            try:
                releases = wheels.releases_of(dist, _python_series(ctx))
            except CligymError:
                continue
            for release in self.skew.choose(ctx.probe.dists[dist]["version"], releases):
                with contextlib.suppress(CligymError):
                    if not wheels.unmet_requirements(release, installed, ctx.probe.python_version or "3.11"):
                        out.append(f"{dist}=={release.version}")
        return out

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        dist, _, version = target.partition("==")
        info = ctx.probe.dists.get(dist)
        if info is None:
            return None
        try:
            release = next(r for r in wheels.releases_of(dist, _python_series(ctx)) if r.version == version)
            wheel = wheels.fetch_wheel(release)
        except (CligymError, StopIteration):  # offline, or the release is gone from PyPI
            return None
        gold = info["version"]
        modules = [m for m in info.get("top_level", []) if m.isidentifier() and not m.startswith("_")]
        symptoms = list(self.skew.symptoms)
        symptom = symptoms.pop(rng.randrange(len(symptoms)))
        install = f"pip install --no-deps --no-index --find-links {FILES_DIR} {q(target)}"
        cleanup = (
            f"rm -f {q(f'{FILES_DIR}/{release.filename}')} && rmdir --ignore-fail-on-non-empty {FILES_DIR}"
        )
        leaks = dict.fromkeys(
            [dist, dist.replace("-", "_"), *modules, version, gold, f"=={version}", f"=={gold}"]
        )
        return self.make(
            target,
            [f"{install} && {cleanup} && rm -rf /root/.cache/pip"],
            [f"pip install --no-deps {q(f'{dist}=={gold}')}"],
            symptom,
            list(leaks),
            hints=tuple(symptoms),
            files=((str(wheel), release.filename),),
        )


def skewable_dists(ctx: Context) -> list[str]:
    """Dependencies and test plugins (not the project, not the test runner) that the project's code or tests
    import by name, or pytest plugins, and whose modules the tests load (when the runtime probe recorded them).

    A dependency of a dependency is left out: another release of it seldom changes what the project sees, and
    when it does, it breaks the import of the library above it, which fails every test.
    """
    loaded = set(ctx.probe.runtime.get("modules") or [])
    imported = imported_modules(ctx)
    out = []
    for dist in _targets_dists(ctx):
        modules = set(ctx.probe.dists[dist].get("top_level") or [])
        if loaded and not modules & loaded:
            continue
        if dist.startswith("pytest-") or not imported or modules & imported:
            out.append(dist)
    return out


def imported_modules(ctx: Context) -> set[str]:
    """Top-level modules named in an `import` or `from` line of a Python file under the project's folder."""
    pattern = r"^[[:space:]]*(from|import)[[:space:]]+[A-Za-z_][A-Za-z0-9_]*"
    out = ctx.sh(
        f"grep -rhoE --include='*.py' {q(pattern)} {q(ctx.probe.workdir)} 2>/dev/null | awk '{{print $2}}' | sort -u"
    )
    return {word for word in out.split() if word.isidentifier()}


def _python_series(ctx: Context) -> str:
    """The image's `major.minor` Python version (the image default when the probe has none)."""
    parts = ctx.probe.python_version.split(".")
    return ".".join(parts[:2]) if len(parts) >= 2 else wheels.IMAGE_PYTHON


FAMILIES = tuple(VersionSkew(skew) for skew in SKEWS)
