"""Faults for golds that are not (only) Python: Perl's module path, and the dynamic loader's search path.

Perl targets are the modules the project's tests `use` (parsed from `t/`), so a fault fails the test files
that load that module and leaves the others passing.
"""

from __future__ import annotations

import random
import re

from cligym_env.inversion.families.base import Context, Fault, FaultFamily, basename, q, reinstall_deb
from cligym_env.inversion.families.config import PROFILE_NAMES
from cligym_env.inversion.families.system import _libraries

# Modules every test file needs (the harness), or pragmas: breaking these fails every test.
PERL_HARNESS = re.compile(r"^(Test::More|Test::Builder|Test2|strict|warnings|lib|vars|constant|utf8|base|parent|"
                          r"Exporter|Carp|overload|feature|if|integer|bytes|FindBin|File::Spec)\b")  # fmt: skip
PERL_STUB_DIR = "/usr/local/share/perl5/site-compat"


def perl_test_modules(ctx: Context) -> list[str]:
    """Modules the test files `use`/`require` (not the project's own, not the harness), most used last."""
    out = ctx.sh(
        "grep -rhoE '^\\s*(use|require)\\s+[A-Z][A-Za-z0-9_:]+' t 2>/dev/null | awk '{print $2}' | sort | uniq -c"
    )
    own = ctx.sh("find lib -name '*.pm' 2>/dev/null | sed 's#^lib/##; s#\\.pm$##; s#/#::#g'").split()
    counts = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and not PERL_HARNESS.match(parts[1]) and parts[1] not in own:
            counts.append((int(parts[0]), parts[1]))
    return [m for _, m in sorted(counts)]


def perl_module_file(ctx: Context, module: str) -> str | None:
    rel = module.replace("::", "/") + ".pm"
    out = ctx.sh(f"perl -M{module} -e 'print $INC{{q({rel})}}' 2>/dev/null").strip()
    return out if out.startswith("/") else None


class PerlModuleRemoved(FaultFamily):
    name = "perl-module-removed"
    category = "dependencies-runtime"
    direction = "delete a Perl module (core or packaged) that some test files load"
    languages = ("perl",)
    SYMPTOMS = (
        "Some test scripts die at compile time with `Can't locate ... in @INC`, the others pass.",
        "Perl cannot find a module that used to be installed.",
        "A few test files fail before running any test; the rest of the suite is fine.",
    )

    def targets(self, ctx: Context) -> list[str]:
        return perl_test_modules(ctx)

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        path = perl_module_file(ctx, target)
        package = ctx.owner(path) if path else None
        if not path or not package:
            return None
        return self.make_fault(
            target, [f"rm -f {q(path)}"], [reinstall_deb(package)], [path, basename(path), package]
        )


class PerlModuleShadowed(FaultFamily):
    name = "perl-module-shadowed"
    category = "compatibility"
    direction = "put an outdated stub of a module the tests use first on Perl's module path (PERL5LIB)"
    languages = ("perl",)
    SYMPTOMS = (
        "Some test scripts fail because a module seems to lack functions it has always had.",
        "Perl loads a different copy of a module than the installed one.",
        "Test files that use one particular module fail with undefined subroutine or import errors.",
    )

    def targets(self, ctx: Context) -> list[str]:
        return perl_test_modules(ctx)

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        stub = f"{PERL_STUB_DIR}/{target.replace('::', '/')}.pm"
        profile = f"/etc/profile.d/{rng.choice(PROFILE_NAMES)}"
        version = rng.choice(["0.01", "0.9", "1.00"])
        body = f"package {target}; our $VERSION = '{version}'; 1;"
        return self.make_fault(
            target,
            [f"mkdir -p {q(stub.rsplit('/', 1)[0])} && echo {q(body)} > {q(stub)}",
             f"echo 'export PERL5LIB={PERL_STUB_DIR}' >> {profile}"],
            [f"rm -f {profile}", f"rm -rf {PERL_STUB_DIR}"],
            [PERL_STUB_DIR, "site-compat", profile, basename(profile), "PERL5LIB"],
        )  # fmt: skip


class LibraryPathShadow(FaultFamily):
    name = "library-path-shadow"
    category = "infrastructure"
    direction = "export LD_LIBRARY_PATH to a folder holding a broken copy of a library the tests load"
    languages = ("*",)
    DIRS = ("/opt/compat/lib", "/usr/local/lib/legacy", "/opt/vendor/lib64")
    SYMPTOMS = (
        "Loading one compiled library fails in login shells, although the system's copy of it is intact.",
        "Only the code that uses one native library fails, with a loader error about its format.",
        "A shared library is found in an unexpected place.",
    )

    def targets(self, ctx: Context) -> list[str]:
        return _libraries(ctx)

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        soname = ctx.sh(f"objdump -p {q(target)} 2>/dev/null | awk '/SONAME/{{print $2}}'").strip()
        name = basename(target)
        soname = soname or (
            name.split(".so.")[0] + ".so." + name.split(".so.")[1].split(".")[0] if ".so." in name else ""
        )
        if not soname:
            return None
        folder = rng.choice(self.DIRS)
        profile = f"/etc/profile.d/{rng.choice(PROFILE_NAMES)}"
        return self.make_fault(
            target,
            [f"mkdir -p {folder} && head -c {rng.choice([1024, 4096])} {q(target)} > {folder}/{soname}",
             f"echo 'export LD_LIBRARY_PATH={folder}' >> {profile}"],
            [f"rm -f {profile}", f"rm -rf {folder}"],
            [folder, profile, basename(profile), "LD_LIBRARY_PATH"],
        )  # fmt: skip


FAMILIES = (PerlModuleRemoved(), PerlModuleShadowed(), LibraryPathShadow())
