"""Settings faults declared as rows: one line in a shell profile, a Python startup hook or a config file.

Each row is a family: where the setting goes (`profile`: /etc/profile.d, which every login shell and the test
command read; `pth`: a `.pth` hook in site-packages that every interpreter runs; `file`: a config file the row
writes, plus an optional profile line that points at it), the values it can take, when it applies (modules the
tests load, executables, the gold's language) and how a user would describe the symptom, in several phrasings.
One engine (`SettingFamily`) turns a row into targets, faults and repairs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from cligym_env.inversion.families.base import Context, Fault, FaultFamily, basename, q
from cligym_env.inversion.families.config import PROFILE_NAMES

PTH_NAMES = ("00-site-defaults", "zz_runtime_tuning", "distutils-settings", "_site_local", "aaa-compat")


@dataclass(frozen=True)
class SettingRow:
    """One family of settings faults (see the module docstring)."""

    name: str
    category: str
    direction: str
    where: str
    """`profile`, `pth` or `file`."""
    values: tuple[str, ...]
    line: str
    """The profile or hook line, `{value}` filled in (for `file`: the optional profile line, may be empty)."""
    symptoms: tuple[str, ...]
    leaks: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("python",)
    needs_modules: tuple[str, ...] = ()
    """Apply only when the tests load one of these modules (top-level names; empty: always)."""
    file: str = ""
    """For `file`: the path written, `{value}` filled in."""
    content: str = ""
    """For `file`: its text, `{value}` filled in."""
    needs_events: tuple[str, ...] = ()
    """Apply only when some test raised one of these audit events in the traced suite (`event:socket.connect`;
    see `tracing.Coverage.files`): a proxy matters only to tests that connect, a thread stack only to threads."""


class SettingFamily(FaultFamily):
    """Runs a `SettingRow`."""

    def __init__(self, row: SettingRow):
        self.row = row
        self.name, self.category, self.direction = row.name, row.category, row.direction
        self.languages = row.languages

    def applies_to(self, probe, language: str) -> bool:
        if not super().applies_to(probe, language):
            return False
        if not self.row.needs_modules:
            return True
        loaded = {m.split(".")[0] for m in probe.runtime.get("modules", [])} | set(probe.test_scoped)
        return any(m in loaded for m in self.row.needs_modules)

    def targets(self, ctx: Context) -> list[str]:
        if self.row.where == "pth" and not ctx.probe.site_packages:
            return []
        if self.row.needs_events and not ctx.tests_use(*self.row.needs_events):
            return []
        return list(self.row.values)

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        row = self.row
        line = row.line.format(value=target)
        leaks = [target, *row.leaks]
        breaks: list[str] = []
        repairs: list[str] = []
        if row.where == "file" or (row.where == "profile" and row.file):
            path = row.file.format(value=target)
            content = row.content.format(value=target)
            breaks.append(
                f"mkdir -p {q(path.rsplit('/', 1)[0])} && printf '%s\\n' {_lines(content)} > {q(path)}"
            )
            repairs.append(f"rm -f {q(path)}")
            leaks += [path, basename(path)]
        if row.where == "pth":
            path = f"{ctx.probe.site_packages}/{rng.choice(PTH_NAMES)}.pth"
            breaks.append(f"echo {q(line)} > {q(path)}")
            repairs.insert(0, f"rm -f {q(path)}")
            leaks += [path, basename(path)]
        elif line:
            path = f"/etc/profile.d/{rng.choice(PROFILE_NAMES)}"
            breaks.append(f"echo {q(line)} >> {path}")
            repairs.insert(0, f"rm -f {path}")
            leaks += [path, basename(path), line.split("=", 1)[-1].strip("'\"")]
        symptom, *hints = row.symptoms
        return self.make(target, breaks, repairs, symptom, leaks, hints=tuple(hints))


def _lines(text: str) -> str:
    return " ".join(q(line) for line in text.splitlines())


ANY = ("*",)
THREADS = ("event:thread.start",)
CHILDREN = ("event:subprocess.Popen", "event:os.posix_spawn", "event:os.system", "event:os.fork")
ROWS = (
    SettingRow(
        "proxy-env", "network-security", "route HTTP(S) through a proxy that does not exist, for every login shell",
        "profile", ("255.255.1", "0.0.254", "66.6.6"),
        "export http_proxy=http://10.{value}:3128 https_proxy=http://10.{value}:3128 "
        "HTTP_PROXY=http://10.{value}:3128 HTTPS_PROXY=http://10.{value}:3128",
        ("HTTP requests, even to services on this machine, hang or fail to connect.",
         "Anything that talks HTTP times out, while plain sockets still work.",
         "Clients fail to reach local test servers although the servers are up."),
        ("proxy", "3128"), ANY, ("urllib", "http", "requests", "urllib3", "httpx", "aiohttp", "gunicorn"),
        needs_events=("event:socket.connect",),
    ),
    SettingRow(
        "python-tz-path-env", "compatibility", "point Python's time-zone search path at a folder with no data",
        "profile", ("/usr/share/zoneinfo-legacy", "/opt/tzdata", "/usr/local/share/zoneinfo"),
        "export PYTHONTZPATH={value}",
        ("Looking up named time zones fails, although the system's time-zone database is installed.",
         "Code that uses IANA time-zone names raises errors saying the zone is not found.",
         "UTC works but every named time zone is unknown to Python."),
        ("PYTHONTZPATH", "TZPATH"), needs_modules=("zoneinfo",),
    ),
    SettingRow(
        "stack-size-limit", "concurrency", "lower the stack size limit (which also sizes new threads' stacks)",
        "profile", ("256", "512", "1024"), "ulimit -s {value}",
        ("Deeply nested work and some threaded code crash with a segmentation fault.",
         "Worker threads die or the interpreter aborts when the call stack gets deep.",
         "Some tests kill the test process itself instead of failing normally."),
        ("ulimit", "-s "), ANY, needs_events=THREADS,
    ),
    SettingRow(
        "address-space-limit", "concurrency", "cap the virtual memory a process may reserve",
        "profile", ("600000", "900000", "1400000"), "ulimit -v {value}",
        ("Starting threads or allocating larger buffers fails with memory errors on a machine with plenty of RAM.",
         "Tests that spawn threads or work on big inputs fail with MemoryError or 'can't start new thread'.",
         "Memory allocation fails far below what the machine has."),
        ("ulimit", "-v "), ANY, needs_events=THREADS,
    ),
    SettingRow(
        "multiprocessing-start-method", "concurrency",
        "force a different multiprocessing start method for every interpreter", "pth", ("spawn", "forkserver"),
        "import multiprocessing as _mp; _mp.set_start_method({value!r}, force=True)",
        ("Code that runs work in child processes fails with pickling errors or hangs.",
         "Multiprocessing behaves differently from the platform default.",
         "Tests that fork workers fail while the same code works in a single process."),
        ("set_start_method", "start_method"), needs_modules=("multiprocessing", "concurrent"),
        needs_events=("event:os.fork", "event:os.posix_spawn"),
    ),
    SettingRow(
        "thread-stack-size", "concurrency", "shrink the stack of every new thread from a startup hook",
        "pth", ("32768", "65536"), "import threading as _t; _t.stack_size({value})",
        ("Code run in worker threads crashes while the same code works in the main thread.",
         "Threads die with a segmentation fault or a RecursionError on modest inputs."),
        ("stack_size",), needs_modules=("threading", "concurrent", "queue"), needs_events=THREADS,
    ),
    SettingRow(
        "openssl-config", "network-security", "point OpenSSL at a hardened configuration that rejects common keys",
        "profile", ("hardened", "fips-like", "seclevel"), "export OPENSSL_CONF=/etc/ssl/openssl-{value}.cnf",
        ("TLS handshakes and some certificate operations fail with errors about keys being too small or no "
         "shared cipher.", "Only code that uses TLS or X.509 fails; everything else works.",
         "OpenSSL refuses keys and protocols that used to be accepted here."),
        ("OPENSSL_CONF", "SECLEVEL", "MinProtocol", "CipherString"), ANY, ("ssl", "OpenSSL", "cryptography"),
        file="/etc/ssl/openssl-{value}.cnf",
        content="openssl_conf = cligym_init\n[cligym_init]\nssl_conf = ssl_sect\n[ssl_sect]\n"
        "system_default = system_default_sect\n[system_default_sect]\nMinProtocol = TLSv1.3\n"
        "CipherString = DEFAULT@SECLEVEL=4",
    ),
    SettingRow(
        "ld-preload-entry", "other", "make the dynamic loader preload a library that is not there, for every program",
        "file", ("libcompat-hook.so", "libprofiler.so.0", "libnss_cache.so.2"), "",
        ("Every program prints a loader error on stderr before doing its work.",
         "Commands still work, but their error output is polluted by a loader message.",
         "Tests that check what a child process writes to stderr fail."),
        ("ld.so.preload", "preload"), ANY, file="/etc/ld.so.preload", needs_events=CHILDREN,
        content="/usr/lib/x86_64-linux-gnu/{value}",
    ),
    SettingRow(
        "python-optimize-env", "other", "run every interpreter optimized (asserts and docstrings stripped)",
        "profile", ("1", "2"), "export PYTHONOPTIMIZE={value}",
        ("Docstrings are missing at run time and code relying on assert statements behaves differently.",
         "Help texts and doc-based features come out empty.",
         "The interpreter behaves as if started with -O."),
        ("PYTHONOPTIMIZE", "optimize"),
    ),
    SettingRow(
        "python-safe-path-env", "compatibility", "stop Python from putting the script's folder on sys.path",
        "profile", ("1",), "export PYTHONSAFEPATH={value}",
        ("Helper modules next to the tests or scripts can no longer be imported.",
         "Running a script that imports a sibling module fails with ModuleNotFoundError."),
        ("PYTHONSAFEPATH", "safe_path"),
    ),
    SettingRow(
        "perl-options-env", "compatibility", "load extra pragmas into every perl through the environment",
        "profile", ("-Mwarnings=FATAL,all", "-Mstrict", "-Mdiagnostics", "-M-indirect"),
        "export PERL5OPT='{value}'",
        ("Perl scripts that used to run cleanly die on warnings or stricture errors.",
         "Every perl invocation behaves differently from a plain `perl`, without any change to the code."),
        ("PERL5OPT",), ("perl",),
    ),
    SettingRow(
        "cargo-build-env", "infrastructure", "set build variables that change how cargo compiles the crate",
        "profile", ('RUSTFLAGS="-D warnings -C opt-level=0 -C debug-assertions=off"', "RUSTC_WRAPPER=sccache",
                    "CARGO_HOME=/root/.cargo-cache", 'RUSTFLAGS="--cfg loom"', "CARGO_BUILD_TARGET=wasm32-wasi"),
        "export {value}",
        ("`cargo test` no longer builds the crate, with errors about configuration rather than code.",
         "The build fails before a single test runs, although the sources are unchanged.",
         "cargo behaves as if configured for a different machine."),
        ("RUSTFLAGS", "RUSTC_WRAPPER", "CARGO_HOME", "CARGO_BUILD_TARGET"), ("rust",),
    ),
)  # fmt: skip
FAMILIES = tuple(SettingFamily(row) for row in ROWS)
