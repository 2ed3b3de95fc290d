"""Faults in the Python environment: installed distributions, their files, the interpreter, import paths."""

from __future__ import annotations

import dataclasses
import random

from cligym_env.inversion.families.base import Context, Fault, FaultFamily, basename, q

# The test runner and its own dependencies: breaking them fails every test for a reason unrelated to the project.
HARNESS = {
    "pytest",
    "pluggy",
    "iniconfig",
    "packaging",
    "pygments",
    "pip",
    "setuptools",
    "wheel",
    "exceptiongroup",
    "tomli",
}
SHADOW_DIR = "/usr/local/lib/python3/site-overrides"


def _targets_dists(ctx: Context, include_project: bool = False) -> list[str]:
    probe = ctx.probe
    names = probe.dependency_closure() + [d for d in probe.test_only_dists() if d not in HARNESS]
    if include_project:
        names.insert(0, probe.project_dist)
    return [n for n in dict.fromkeys(names) if n in probe.dists and n not in HARNESS]


def importable_dists(ctx: Context) -> list[str]:
    """Distributions (the project included) with a top-level module a stub could shadow."""
    return [d for d in _targets_dists(ctx, include_project=True) if _top_module(ctx, d)]


def _force_reinstall(ctx: Context, dist: str) -> str:
    version = ctx.probe.dists[dist]["version"]
    return f"pip install --force-reinstall --no-deps {q(f'{dist}=={version}')}"


def _top_module(ctx: Context, dist: str) -> str | None:
    tops = [
        t for t in ctx.probe.dists[dist].get("top_level", []) if t.isidentifier() and not t.startswith("_")
    ]
    return tops[0] if tops else None


def _lazily_imported(ctx: Context, module: str) -> bool:
    """A module file of site-packages that the traced suite ran only inside tests, at most half of them (never at
    collection, when every test module is imported)."""
    if not module.endswith(".py"):
        return False
    coverage = ctx.coverage()
    count, _ids, outside = coverage.module_reach(f"{ctx.probe.site_packages}/{module}")
    return 0 < count <= 0.5 * len(coverage.tests) and not outside


def _watching_module(ctx: Context, fault: Fault, path: str) -> Fault:
    ids = ctx.coverage().module_reach(path)[1]
    return dataclasses.replace(fault, watch=tuple(ids)) if ids else fault


class UninstalledDependency(FaultFamily):
    name = "uninstalled-python-dependency"
    category = "dependencies-runtime"
    direction = "uninstall a Python distribution that the project or its tests import"

    def targets(self, ctx: Context) -> list[str]:
        return _targets_dists(ctx)

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        version = ctx.probe.dists[target]["version"]
        return self.make(
            target,
            [f"pip uninstall -y {q(target)} && rm -rf /root/.cache/pip"],
            [f"pip install {q(f'{target}=={version}')}"],
            "Something the code imports at run time seems to be unavailable.",
            [target, target.replace("-", "_"), *(ctx.probe.dists[target].get("top_level") or [])],
        )


class DeletedDependencyModule(FaultFamily):
    name = "deleted-python-module-file"
    category = "dependencies-runtime"
    direction = "delete one module file inside an installed Python package, leaving the rest in place"

    def targets(self, ctx: Context) -> list[str]:
        coverage = ctx.coverage()
        out = []
        for dist in _targets_dists(ctx, include_project=True):
            modules = ctx.probe.dists[dist].get("modules", [])
            if coverage.tests:  # modules first imported inside some tests: only those tests fail
                out += [f"{dist}:{m}" for m in modules if _lazily_imported(ctx, m)]
            else:
                out += [f"{dist}:{m}" for m in modules[:12]]
        return out

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        dist, module = target.split(":", 1)
        path = f"{ctx.probe.site_packages}/{module}"
        fault = self.make(
            target,
            [f"rm -f {q(path)}"],
            [_force_reinstall(ctx, dist)],
            "An installed package looks incomplete: some imports fail although the package is listed as installed.",
            [path, module],
        )
        return _watching_module(ctx, fault, path)


class EmptiedDependencyModule(DeletedDependencyModule):
    name = "emptied-python-module-file"
    category = "dependencies-runtime"
    direction = "truncate one module file of an installed Python package to zero bytes"

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        dist, module = target.split(":", 1)
        path = f"{ctx.probe.site_packages}/{module}"
        fault = self.make(
            target,
            [f"test -f {q(path)} && : > {q(path)}"],
            [_force_reinstall(ctx, dist)],
            "Names that should exist in an installed package can no longer be imported from it.",
            [path, module],
        )
        return _watching_module(ctx, fault, path)


class DeletedNativeExtension(FaultFamily):
    name = "deleted-native-extension"
    category = "compatibility"
    direction = "delete a compiled extension module (.so) of an installed Python package"

    def targets(self, ctx: Context) -> list[str]:
        return [
            f"{d}:{so}"
            for d in _targets_dists(ctx, include_project=True)
            for so in ctx.probe.dists[d].get("native", [])
        ]

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        dist, so = target.split(":", 1)
        path = f"{ctx.probe.site_packages}/{so}"
        return self.make(
            target,
            [f"rm -f {q(path)}"],
            [_force_reinstall(ctx, dist)],
            "Code paths that use a compiled accelerator module fail, the pure-Python ones still work.",
            [path, basename(so)],
        )


class CorruptedNativeExtension(DeletedNativeExtension):
    name = "corrupted-native-extension"
    category = "compatibility"
    direction = "corrupt a compiled extension module (.so) of an installed Python package"

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        dist, so = target.split(":", 1)
        path = f"{ctx.probe.site_packages}/{so}"
        size = rng.choice([64, 512, 4096])
        return self.make(
            target,
            [f"head -c {size} {q(path)} > /tmp/.x && cat /tmp/.x > {q(path)} && rm -f /tmp/.x"],
            [_force_reinstall(ctx, dist)],
            "Importing part of an installed package fails with a low-level loader error.",
            [path, basename(so)],
        )


class RemovedDistMetadata(FaultFamily):
    name = "removed-dist-metadata"
    category = "dependencies-runtime"
    direction = "remove the installed metadata (.dist-info) of a Python distribution, keeping its code"

    def targets(self, ctx: Context) -> list[str]:
        return _targets_dists(ctx, include_project=True)

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        version = ctx.probe.dists[target]["version"]
        dist_info = f"{target.replace('-', '_')}-{version}.dist-info"
        return self.make(
            target,
            [f"find {q(ctx.probe.site_packages)} -maxdepth 1 -iname {q(dist_info)} -exec rm -rf {{}} +"],
            [_force_reinstall(ctx, target)],
            "Python's package metadata no longer agrees with what is importable.",
            [dist_info, ".dist-info"],
        )


class ShadowingModule(FaultFamily):
    name = "shadowing-module-on-path"
    category = "compatibility"
    direction = "put a stale stub module earlier on Python's import path so it shadows a real package"

    def targets(self, ctx: Context) -> list[str]:
        return importable_dists(ctx)

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        module = _top_module(ctx, target)
        if not module:
            return None
        pth = f"{ctx.probe.site_packages}/{rng.choice(['00-overrides', 'aaa_local', '_site_fix'])}.pth"
        stub = f"{SHADOW_DIR}/{module}.py"
        return self.make(
            target,
            [
                f'mkdir -p {SHADOW_DIR} && printf \'%s\\n\' \'"""Local compatibility shim."""\' \'__version__ = "0.0"\' > {q(stub)}',
                f"echo 'import sys; sys.path.insert(0, \"{SHADOW_DIR}\")' > {q(pth)}",
            ],
            [f"rm -f {q(pth)} && rm -rf {SHADOW_DIR}"],
            "A package imports without error but seems to be missing most of its contents.",
            [pth, basename(pth), SHADOW_DIR, "site-overrides"],
        )


class ImportBlockedByPth(FaultFamily):
    name = "pth-import-block"
    category = "compatibility"
    direction = "add a startup hook (.pth file) that makes the interpreter refuse to import a package"

    def targets(self, ctx: Context) -> list[str]:
        return [d for d in _targets_dists(ctx) if _top_module(ctx, d)]

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        module = _top_module(ctx, target)
        if not module:
            return None
        path = f"{ctx.probe.site_packages}/{rng.choice(['_virtualenv_compat', 'zz_site_fix', 'distutils-shim'])}.pth"
        return self.make(
            target,
            [f"echo {q(f'import sys; sys.modules[{module!r}] = None')} > {q(path)}"],
            [f"rm -f {q(path)}"],
            "An import fails even though the package is installed and its files look intact.",
            [path, basename(path)],
        )


class RemovedStdlibModule(FaultFamily):
    name = "removed-stdlib-module"
    category = "dependencies-runtime"
    direction = "delete a module from the Python standard library that the tests rely on"

    # Modules that tests or common libraries use, but the interpreter's startup does not.
    CANDIDATES = (
        "difflib.py", "textwrap.py", "shlex.py", "csv.py", "gettext.py", "decimal.py", "fractions.py", "json/decoder.py",
        "json/encoder.py", "unittest/mock.py", "tempfile.py", "pprint.py", "dataclasses.py", "inspect.py",
        "ipaddress.py", "uuid.py", "email/utils.py", "http/client.py", "string.py", "datetime.py", "locale.py",
        "calendar.py", "zoneinfo/_common.py", "xml/etree/ElementTree.py", "argparse.py", "subprocess.py",
        "asyncio/base_events.py", "html/__init__.py", "base64.py", "hashlib.py", "glob.py", "fnmatch.py",
    )  # fmt: skip

    def targets(self, ctx: Context) -> list[str]:
        stdlib = ctx.probe.stdlib
        wanted = set(ctx.probe.runtime.get("modules", []))
        names = [c for c in self.CANDIDATES if not wanted or c.split("/")[0].removesuffix(".py") in wanted]
        scoped = set(ctx.probe.test_scoped.values())  # removed-test-scoped-stdlib-module's targets
        return [t for t in [f"{stdlib}/{c}" for c in names] + list(ctx.probe.dynload) if t not in scoped]

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        return self.deleted_packaged_file(
            ctx, target, "Part of Python's own standard library seems to be unavailable."
        )


class TestScopedStdlibModule(RemovedStdlibModule):
    """Aimed by parsing the project: a standard-library module that its code or tests import only inside
    functions (never at module level, and the test runner does not load it; `Probe.test_scoped`), so that only
    the tests that reach those functions fail and the rest of the suite passes."""

    name = "removed-test-scoped-stdlib-module"
    direction = "delete a standard-library module that the code imports only inside functions, so only some tests fail"
    __test__ = False  # not a pytest class, whatever its name says

    def targets(self, ctx: Context) -> list[str]:
        stdlib = ctx.probe.stdlib.rstrip("/") + "/"
        return sorted({f for f in ctx.probe.test_scoped.values() if stdlib != "/" and f.startswith(stdlib)})

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        return self.deleted_packaged_file(
            ctx,
            target,
            "Tests fail where the code imports a standard-library module at run time, not when the test files "
            "load.",
        )


class InterpreterNotExecutable(FaultFamily):
    name = "interpreter-not-executable"
    category = "file-system"
    direction = "remove the execute permission from the Python interpreter binary"

    def targets(self, ctx: Context) -> list[str]:
        return [ctx.probe.real_python] if ctx.probe.real_python else []

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        mode = rng.choice(["a-x", "0644", "0600"])
        return self.make(
            target,
            [f"chmod {mode} {q(target)}"],
            [f"chmod 0755 {q(target)}"],
            "Nothing written in Python starts any more, even as root.",
            [f"chmod 755 {target}", f"chmod 0755 {target}", f"chmod +x {target}"],
        )


class BrokenInterpreterSymlink(FaultFamily):
    name = "broken-interpreter-symlink"
    category = "file-system"
    direction = "point the python3 symlink that the virtualenv uses at an interpreter that does not exist"

    def targets(self, ctx: Context) -> list[str]:
        return ["/usr/bin/python3"] if ctx.probe.real_python.startswith("/usr/bin/python3.") else []

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        real = basename(ctx.probe.real_python)
        wrong = rng.choice(["python3.9", "python3.12", "python3.10"])
        return self.make(
            target,
            [f"ln -sfn {wrong} {target}"],
            [f"ln -sfn {real} {target}"],
            "The project's virtual environment cannot start its interpreter.",
            [f"ln -sfn {real}", f"ln -sf {real}", wrong],
        )


FAMILIES = (
    UninstalledDependency(),
    DeletedDependencyModule(),
    EmptiedDependencyModule(),
    DeletedNativeExtension(),
    CorruptedNativeExtension(),
    RemovedDistMetadata(),
    ShadowingModule(),
    ImportBlockedByPth(),
    RemovedStdlibModule(),
    TestScopedStdlibModule(),
    InterpreterNotExecutable(),
    BrokenInterpreterSymlink(),
)
