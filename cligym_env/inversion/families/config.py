"""Faults in configuration: login-shell environment variables, limits and masks set in /etc/profile.d.

Test commands run in a login shell (`bash -lc`) and so does the agent's session, so a line in /etc/profile.d
changes both, like a bad line in a real machine's shell profile.
"""

from __future__ import annotations

import random
from typing import ClassVar

from cligym_env.inversion.families.base import Context, Fault, FaultFamily, basename, q
from cligym_env.inversion.families.python_env import _top_module, importable_dists

PROFILE_NAMES = ("zz-site.sh", "99-local.sh", "50-defaults.sh", "local-env.sh")
STUB_DIR = "/usr/local/share/python-compat"


def _profile_fault(family: FaultFamily, rng: random.Random, target: str, lines: list[str], symptom: str,
                   extra_breaks: tuple[str, ...] = (), extra_repairs: tuple[str, ...] = ()) -> Fault:  # fmt: skip
    path = f"/etc/profile.d/{rng.choice(PROFILE_NAMES)}"
    return family.make(
        target,
        [*extra_breaks, f"printf '%s\\n' {' '.join(q(line) for line in lines)} > {path}"],
        [f"rm -f {path}", *extra_repairs],
        symptom,
        [path, path.rsplit("/", 1)[1]] + [line.split("=", 1)[-1] for line in lines if "=" in line],
    )


class PythonPathPoison(FaultFamily):
    name = "pythonpath-poison"
    category = "infrastructure"
    direction = "export a PYTHONPATH in the shell profile that puts stale stub modules first"

    def targets(self, ctx: Context) -> list[str]:
        return importable_dists(ctx)

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        module = _top_module(ctx, target)
        if not module:
            return None
        stub = f"{STUB_DIR}/{module}.py"
        return _profile_fault(
            self, rng, target, [f"export PYTHONPATH={STUB_DIR}"],
            "Python picks up an unexpected copy of a package in login shells.",
            extra_breaks=(f"mkdir -p {STUB_DIR} && echo '# compatibility shim' > {q(stub)}",),
            extra_repairs=(f"rm -rf {STUB_DIR}",),
        )  # fmt: skip


class ProfileSetting(FaultFamily):
    """A family that writes one line into /etc/profile.d: `line` with `{target}` filled in from `values`."""

    def __init__(self, name: str, category: str, direction: str, values: tuple[str, ...], line: str, symptom: str,
                 languages: tuple[str, ...] = ("python",)):  # fmt: skip
        self.name, self.category, self.direction, self.languages = name, category, direction, languages
        self.values, self.line, self.symptom = values, line, symptom

    def targets(self, ctx: Context) -> list[str]:
        return list(self.values)

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault:
        return _profile_fault(self, rng, target, [self.line.format(target=target)], self.symptom)


class StartupHookSetting(FaultFamily):
    """A `.pth` startup hook in site-packages that changes one runtime setting of the standard library.

    Unlike the import-blocking hooks, these leave every module importable: only the code paths that depend on the
    setting (deep recursion, long CSV fields, decimal precision, log capture, ...) fail, so most tests keep passing.
    """

    name = "startup-hook-setting"
    category = "infrastructure"
    direction = "add a Python startup hook (.pth file) that changes a runtime setting of the standard library"

    # key: (stdlib module the tests must load, or "" for any; the hook line; the symptom; words that give it away)
    HOOKS: ClassVar[dict[str, tuple[str, str, str, tuple[str, ...]]]] = {
        "recursion-limit": (
            "", "import sys; sys.setrecursionlimit(220)",
            "Work on nested data or deep call chains fails with RecursionError, although it used to work.",
            ("setrecursionlimit", "recursionlimit"),
        ),
        "int-str-digits": (
            "", "import sys; sys.set_int_max_str_digits(640)",
            "Converting very large integers to or from text fails with a ValueError about digits.",
            ("set_int_max_str_digits", "max_str_digits"),
        ),
        "warnings-filter": (
            "warnings", "import warnings; warnings.simplefilter('error')",
            "Code that used to print harmless warnings now stops with an exception.", ("simplefilter",),
        ),
        "decimal-precision": (
            "decimal", "import decimal; decimal.DefaultContext.prec = 6",
            "Decimal arithmetic comes out rounded to a handful of significant digits.", ("DefaultContext", ".prec"),
        ),
        "decimal-inexact-trap": (
            "decimal", "import decimal; decimal.DefaultContext.traps[decimal.Inexact] = True",
            "Ordinary decimal arithmetic raises an exception about an inexact result.", ("DefaultContext", "traps"),
        ),
        "csv-field-limit": (
            "csv", "import csv; csv.field_size_limit(64)",
            "Reading CSV data with long fields fails with 'field larger than field limit'.", ("field_size_limit",),
        ),
        "socket-timeout": (
            "socket", "import socket; socket.setdefaulttimeout(0.0005)",
            "Network operations, even on the local machine, time out almost at once.", ("setdefaulttimeout",),
        ),
        "logging-disabled": (
            "logging", "import logging; logging.disable(logging.CRITICAL)",
            "Log messages no longer appear anywhere, and code that checks for them sees nothing.",
            ("logging.disable", "CRITICAL"),
        ),
        "tempfile-dir": (
            "tempfile", "import tempfile; tempfile.tempdir = '/var/tmp/.scratch'",
            "Creating temporary files from Python fails with FileNotFoundError, although /tmp looks fine.",
            ("tempfile.tempdir", "/var/tmp/.scratch"),
        ),
    }  # fmt: skip
    HOOK_NAMES = ("00-site-defaults", "zz_runtime_tuning", "distutils-settings", "_site_local")

    def targets(self, ctx: Context) -> list[str]:
        loaded = set(ctx.probe.runtime.get("modules", []))
        return [
            k for k, (module, *_rest) in self.HOOKS.items() if not module or not loaded or module in loaded
        ]

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        if target not in self.HOOKS or not ctx.probe.site_packages:
            return None
        _module, line, symptom, leaks = self.HOOKS[target]
        path = f"{ctx.probe.site_packages}/{rng.choice(self.HOOK_NAMES)}.pth"
        return self.make(
            target, [f"echo {q(line)} > {q(path)}"], [f"rm -f {q(path)}"], symptom,
            [path, basename(path), *leaks],
        )  # fmt: skip


ANY = ("*",)
FAMILIES = (
    PythonPathPoison(),
    StartupHookSetting(),
    ProfileSetting(
        "warnings-as-errors-env", "compatibility",
        "turn Python warnings into errors for every process through the environment",
        ("error", "error::DeprecationWarning", "error::ResourceWarning", "error::UserWarning"),
        "export PYTHONWARNINGS={target}", "Code that used to print harmless warnings now stops with an exception.",
    ),
    ProfileSetting(
        "pytest-options-env", "infrastructure", "inject pytest command-line options through the environment",
        ("-p no:python", "--import-mode=importlib", "-W error", "--strict-config -o xfail_strict=true",
         "-p no:unraisableexception -W error::pytest.PytestUnraisableExceptionWarning", "--capture=fd -p no:logging"),
        'export PYTEST_ADDOPTS="{target}"',
        "The test runner behaves differently from a plain invocation, with no change in the project's config.",
    ),
    ProfileSetting(
        "io-encoding-env", "compatibility",
        "force an ASCII-only text encoding for Python's standard streams and locale",
        ("PYTHONIOENCODING=ascii", "PYTHONUTF8=0 LC_ALL=POSIX LANG=POSIX", "LC_ALL=en_US.ISO-8859-1"),
        "export {target}", "Printing or reading non-ASCII text fails or comes out garbled.",
    ),
    ProfileSetting(
        "timezone-env", "compatibility", "set an invalid or surprising time zone for every login shell",
        ("Mars/Olympus_Mons", "EST+5EDT,M3.2.0/2,M11.1.0/2", "Pacific/Kiritimati"),
        "export TZ='{target}'", "Dates and times come out shifted or local-time conversions fail.", ANY,
    ),
    ProfileSetting(
        "file-descriptor-limit", "concurrency", "lower the open-file limit for every login shell",
        ("24", "48", "64"), "ulimit -n {target}",
        "Work that opens many files or sockets at once fails with 'Too many open files'.", ANY,
    ),
    ProfileSetting(
        "restrictive-umask", "file-system", "set a umask that strips permissions from every new file and directory",
        ("0777", "0177", "0277"), "umask {target}",
        "Newly created files and scripts end up with unexpected permissions.", ANY,
    ),
    ProfileSetting(
        "home-directory-env", "infrastructure",
        "point HOME (and XDG dirs) at a place that does not exist or is not writable",
        ("/nonexistent", "/proc/self"), "export HOME={target} XDG_CACHE_HOME={target}/.cache",
        "Tools that keep per-user files or caches fail to save them.", ANY,
    ),
)  # fmt: skip
