"""Faults in configuration: login-shell environment variables, limits and masks set in /etc/profile.d.

Test commands run in a login shell (`bash -lc`) and so does the agent's session, so a line in /etc/profile.d
changes both, like a bad line in a real machine's shell profile.
"""

from __future__ import annotations

import random

from cligym_env.inversion.families.base import Context, Fault, FaultFamily, q
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


ANY = ("*",)
FAMILIES = (
    PythonPathPoison(),
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
