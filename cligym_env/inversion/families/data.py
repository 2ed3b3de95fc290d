"""Data files the tests read: an installed package's data (zoneinfo, word lists, bundles) or the system's.

Aimed by the gold's runtime probe (`files_read`: what the test run opened), so each fault hits something this
project really reads, and usually only the tests that read that one file fail.
"""

from __future__ import annotations

import random

from cligym_env.inversion.families.base import Context, Fault, FaultFamily, basename, q, reinstall_deb
from cligym_env.inversion.families.python_env import HARNESS, _force_reinstall

CODE_SUFFIXES = (".py", ".pyc", ".so", ".pth", ".pyi", ".typed")
# System files whose loss breaks the shell, the loader or every program (not one project's tests).
SYSTEM_SKIP = ("/etc/ld.so", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/inputrc", "/etc/localtime",
               "/usr/lib/locale/", "/etc/profile", "/etc/bash", "/etc/environment", "/etc/hosts", "/etc/resolv",
               "/etc/ssl/certs/ca-certificates.crt", "/usr/lib/x86_64-linux-gnu/gconv/")  # fmt: skip


def package_data_files(ctx: Context) -> dict[str, str]:
    """Data files (not code, not metadata) of installed dependencies that the tests read -> owning distribution."""
    probe = ctx.probe
    tops: dict[str, str] = {}
    for dist, info in probe.dists.items():
        if dist in HARNESS or dist == probe.project_dist:
            continue
        for top in info.get("top_level", []):
            tops.setdefault(top, dist)
    prefix = probe.site_packages.rstrip("/") + "/"
    out = {}
    for path in probe.runtime.get("files_read") or []:
        if not path.startswith(prefix) or path.endswith(("/", *CODE_SUFFIXES)) or ".dist-info/" in path:
            continue
        top = path[len(prefix) :].split("/", 1)[0]
        if top in tops:
            out[path] = tops[top]
    return out


def system_data_files(ctx: Context) -> list[str]:
    return [
        p
        for p in ctx.probe.runtime.get("files_read") or []
        if p.startswith(("/usr/share/", "/etc/", "/usr/lib/")) and not p.endswith("/") and not p.startswith(SYSTEM_SKIP)
        and not p.endswith(".so") and ".so." not in p
    ]  # fmt: skip


class DeletedPackageData(FaultFamily):
    name = "deleted-package-data"
    category = "file-system"
    direction = "delete one data file (not code) of an installed dependency that the tests read"
    SYMPTOMS = (
        "An installed library fails when it loads one of its own data files.",
        "Some lookups in a third-party package fail with a missing-file error, others work.",
        "A package that is installed and importable is missing part of its data.",
    )

    def targets(self, ctx: Context) -> list[str]:
        return [p for p in package_data_files(ctx) if ctx.aimed_at_file(p)]

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        dist = package_data_files(ctx).get(target)
        if dist is None:
            return None
        fault = self.make_fault(
            target, [self.breaking(target, rng)], [_force_reinstall(ctx, dist)], [target, basename(target)]
        )
        return ctx.watch_opened(fault, target)

    def breaking(self, path: str, rng: random.Random) -> str:
        return f"rm -f {q(path)}"


class CorruptedPackageData(DeletedPackageData):
    name = "corrupted-package-data"
    category = "file-system"
    direction = "truncate or garble one data file of an installed dependency that the tests read"
    SYMPTOMS = (
        "An installed library chokes on one of its own data files: parse or format errors from inside it.",
        "Some results from a third-party package are wrong or raise decoding errors, most are fine.",
        "A dependency's bundled data looks damaged.",
    )

    def breaking(self, path: str, rng: random.Random) -> str:
        return _garble(path, rng)


class CorruptedSystemData(FaultFamily):
    name = "corrupted-system-data"
    category = "file-system"
    direction = "truncate or garble a system data file (shipped by a Debian package) that the tests read"
    languages = ("*",)
    SYMPTOMS = (
        "Something that reads a system data file gets garbage: format errors rather than missing files.",
        "A system database the tests consult looks damaged.",
        "Only the code paths that read one system file fail, with parse or format errors.",
    )

    def targets(self, ctx: Context) -> list[str]:
        return [p for p in system_data_files(ctx) if ctx.aimed_at_file(p)]

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        package = ctx.owner(target)
        if not package:
            return None
        fault = self.make_fault(
            target,
            [self.breaking(target, rng)],
            [f"rm -f {q(target)}", reinstall_deb(package)],  # a changed conffile is kept by a plain reinstall
            [target, basename(target), package, f"install --reinstall -y {package}"],
        )
        return ctx.watch_opened(fault, target)

    def breaking(self, path: str, rng: random.Random) -> str:
        return _garble(path, rng)


class EmptiedSystemDatabase(CorruptedSystemData):
    """Small system databases many programs consult (netbase, media types, magic): emptied, not deleted."""

    name = "emptied-system-database"
    category = "other"
    direction = "empty one of the system's small databases (services, protocols, media types, magic numbers)"
    languages = ("*",)
    FILES = ("/etc/services", "/etc/protocols", "/etc/mime.types", "/etc/ethertypes", "/etc/rpc",
             "/usr/share/misc/magic.mgc", "/etc/magic")  # fmt: skip
    SYMPTOMS = (
        "Lookups by name that the system normally answers (services, media types, file types) come back empty.",
        "Some name-to-number or name-to-type lookups fail although nothing looks missing.",
        "A system lookup table seems to be there but knows nothing.",
    )

    def targets(self, ctx: Context) -> list[str]:
        out = ctx.sh("for f in " + " ".join(self.FILES) + '; do [ -s "$f" ] && echo "$f"; done')
        return [ln.strip() for ln in out.splitlines() if ln.startswith("/") and ctx.aimed_at_file(ln.strip())]

    def breaking(self, path: str, rng: random.Random) -> str:
        return f": > {q(path)}"


def _garble(path: str, rng: random.Random) -> str:
    """Keep the first bytes and cut the rest (a torn write), or overwrite the middle with zeros."""
    if rng.random() < 0.5:
        keep = rng.choice([16, 60, 200])
        return f"head -c {keep} {q(path)} > {q(path)}.t && cat {q(path)}.t > {q(path)} && rm -f {q(path)}.t"
    return (
        f"n=$(stat -c %s {q(path)}) && dd if=/dev/zero of={q(path)} bs=1 seek=$((n / 3)) count=$((n / 3 + 1)) "
        "conv=notrunc status=none"
    )


FAMILIES = (DeletedPackageData(), CorruptedPackageData(), CorruptedSystemData(), EmptiedSystemDatabase())
