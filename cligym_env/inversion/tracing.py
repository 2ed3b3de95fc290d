"""Which tests reach which library code, and a quick re-run of just those tests.

Two tools that make aimed faults cheap to try:

- `suite_coverage(probe)` runs a gold's pytest suite once, traced, in a throwaway container (cached per image):
  for every line of library code (standard library and site-packages, pytest's own left out) that the
  project's code or tests reach, which tests ran it. A fault aimed at one line then knows in advance which
  tests can notice it, and how many: a line that every test runs is a sweeping target, a line that no test
  runs is a fault nobody can observe.
- `screen(container, spec, watch)` re-runs only the watched tests (pytest node ids) in a live container after
  the break: a few seconds instead of the whole suite, so a candidate that flips nothing is refused before
  the full run.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass, field

# Library code the tracer ignores: the test runner and its plugins (their calls are not the project's).
RUNNER_PARTS = ("/_pytest/", "/pytest/", "/pluggy/", "/pytest_", "/py/", "/iniconfig/", "/__pycache__/")
# Standard-library modules that the interpreter, pytest or importing anything needs: a mutation there breaks
# every test (or the repair tools themselves), not some.
CORE_STDLIB = {
    "os", "sys", "re", "abc", "ast", "io", "types", "typing", "enum", "functools", "collections", "inspect",
    "importlib", "encodings", "codecs", "posixpath", "genericpath", "stat", "site", "sysconfig", "warnings",
    "weakref", "copyreg", "keyword", "operator", "reprlib", "linecache", "tokenize", "token", "traceback",
    "contextlib", "dis", "opcode", "pathlib", "fnmatch", "ntpath", "sre_compile", "sre_parse", "sre_constants",
    "_collections_abc", "_weakrefset", "_sitebuiltins", "argparse", "gettext", "locale", "shutil", "tempfile",
    "textwrap", "pprint", "dataclasses", "struct", "zipimport", "runpy", "pkgutil", "subprocess", "signal",
    "selectors", "threading", "platform", "glob", "string", "copy", "heapq", "bisect", "random", "hashlib",
    "zipfile", "email", "json", "unittest", "doctest", "pdb", "bdb", "cmd", "code", "codeop", "shlex", "ssl",
}  # fmt: skip
TESTS_PER_LINE = 64
"""Test indices kept per traced line (the count of distinct tests is kept in full)."""
TRACE_SECONDS = 600
SCREEN_SECONDS = 180

_TRACE_SCRIPT = r"""
import json, os, shlex, signal, sys, sysconfig, threading
paths = sysconfig.get_paths()
roots = tuple(dict.fromkeys((paths["stdlib"], paths["purelib"], paths["platlib"])))
skip = tuple(json.loads(sys.argv[2]))
cap = int(sys.argv[3])
core = tuple(p for m in json.loads(sys.argv[4]) for p in (f"{paths['stdlib']}/{m}.py", f"{paths['stdlib']}/{m}/"))
workdir = os.getcwd() + "/"
tests, current = [], [-1]
calls, lines = {}, {}
wanted = {}
def reached(frame):
    caller, depth = frame.f_back, 0
    while caller is not None and depth < 40:  # reached from the project's code or its tests
        if caller.f_code.co_filename.startswith(workdir):
            return True
        caller, depth = caller.f_back, depth + 1
    return False
def tracer(frame, event, arg):
    code = frame.f_code
    ok = wanted.get(code)
    if ok is None:
        name = code.co_filename
        ok = wanted[code] = (
            name.startswith(roots) and not name.startswith(core) and not any(s in name for s in skip)
        )
    if not ok or not reached(frame):
        return None
    key = code.co_filename + ":" + code.co_name
    calls[key] = calls.get(key, 0) + 1
    here = lines.setdefault(code.co_filename, {})
    def local(frame, event, arg):
        if event == "line":
            count(here, frame.f_lineno)
        return local
    return local
def count(table, key):  # [distinct tests, last test, up to `cap` test indices]
    entry = table.get(key)
    if entry is None:
        entry = table[key] = [0, -2, []]
    test = current[0]
    if entry[1] != test:
        entry[0] += 1
        entry[1] = test
        if len(entry[2]) < cap and test not in entry[2]:
            entry[2].append(test)
files = {}
events = ("socket.", "_thread.start", "os.fork", "os.posix_spawn", "subprocess.Popen", "ssl.", "os.system")
def note(key):
    count(files, key)
def audit(event, args):
    if event == "open" and isinstance(args[0], str) and not args[0].startswith(workdir):
        note(os.path.normpath(os.path.join(os.getcwd(), args[0])) if not args[0].startswith("/") else args[0])
    elif event == "subprocess.Popen" and args[0]:
        note("exec:" + os.fsdecode(args[0]))
    if event.startswith(events):
        note("event:" + event)
sys.addaudithook(audit)
_thread_start = threading.Thread.start
def thread_start(self, *a, **k):  # no audit event for a new thread before Python 3.13
    note("event:thread.start")
    return _thread_start(self, *a, **k)
threading.Thread.start = thread_start
class Track:
    def pytest_runtest_logstart(self, nodeid, location):
        tests.append(nodeid)
        current[0] = len(tests) - 1
    def pytest_runtest_logfinish(self, nodeid, location):
        current[0] = -1
def dump(*_):
    sys.settrace(None)
    threading.settrace(None)
    out = {"tests": tests, "calls": calls, "files": {k: [e[0], e[2]] for k, e in files.items()},
           "lines": {f: {str(n): [e[0], e[2]] for n, e in ls.items()} for f, ls in lines.items()}}
    sys.__stdout__.write("@@coverage " + json.dumps(out) + "\n")
    sys.__stdout__.flush()
    os._exit(0)
signal.signal(signal.SIGTERM, dump)
import pytest
threading.settrace(tracer)
sys.settrace(tracer)
pytest.main(shlex.split(sys.argv[1]), plugins=[Track()])
dump()
"""

_SCREEN_SCRIPT = r"""
import json, shlex, sys
import pytest
watch = set(json.loads(sys.argv[2]))
seen = {"passed": 0, "failed": 0}
class Only:
    def pytest_collection_modifyitems(self, session, config, items):
        items[:] = [item for item in items if item.nodeid in watch]
    def pytest_runtest_logreport(self, report):
        if report.when == "call" or report.outcome == "failed":
            seen[report.outcome] = seen.get(report.outcome, 0) + 1
code = pytest.main(shlex.split(sys.argv[1]) + ["-q", "-p", "no:cacheprovider", "-x"], plugins=[Only()])
print("@@screen " + json.dumps({"code": int(code), **seen}))
"""


@dataclass
class Coverage:
    """A traced run of a gold's suite: which tests ran each library line, and which functions were called."""

    tests: list[str] = field(default_factory=list)
    """pytest node ids, in the order they ran (indices below point here; -1: outside any test)."""
    lines: dict[str, dict[int, tuple[int, list[int]]]] = field(default_factory=dict)
    """path -> line -> (distinct tests that ran it, up to `TESTS_PER_LINE` of their indices)."""
    calls: dict[str, int] = field(default_factory=dict)
    """`path:function` -> calls reached from the project's code or tests."""
    files: dict[str, tuple[int, list[int]]] = field(default_factory=dict)
    """Files opened outside the project's tree, programs run (`exec:NAME`) and some audit events (`event:NAME`:
    sockets, threads, forks, TLS), from Python's audit hook: key -> (distinct tests, some indices), as for
    `lines`; `event:thread.start` when a thread starts. Opens in C code (the loader, libc's databases) are not audited: see the strace probe for those."""

    def reach(self, path: str, *lines: int) -> tuple[int, list[str], bool]:
        """For the first of `lines` that ran: (tests that ran it, some of their node ids, whether it also ran
        outside any test, e.g. at import). (0, [], False) when none ran."""
        per_file = self.lines.get(path, {})
        return self._answer(next((per_file[n] for n in lines if n in per_file), None))

    def module_reach(self, path: str) -> tuple[int, list[str], bool]:
        """As `reach`, for a whole file: (the most tests any of its lines ran in, node ids of tests that ran some
        of it, whether some of it ran outside any test: imported at collection, so every test needs it)."""
        per_file = self.lines.get(path, {})
        count, indices, outside = 0, {}, False
        for n, ids in per_file.values():
            count = max(count, n)
            outside = outside or -1 in ids
            indices.update(dict.fromkeys(i for i in ids if i >= 0))
        ids = [self.tests[i] for i in list(indices)[:TESTS_PER_LINE] if i < len(self.tests)]
        return count - (1 if outside else 0), ids, outside

    def opened(self, path: str) -> tuple[int, list[str], bool]:
        """As `reach`, for a file opened (or `exec:PROGRAM` run) during the traced suite."""
        return self._answer(self.files.get(path))

    def _answer(self, entry: tuple[int, list[int]] | None) -> tuple[int, list[str], bool]:
        if entry is None:
            return 0, [], False
        count, indices = entry
        outside = -1 in indices
        ids = [self.tests[i] for i in indices if 0 <= i < len(self.tests)]
        return count - (1 if outside else 0), ids, outside


def pytest_arguments(test_command: str) -> str | None:
    """The pytest arguments of a gold's test command, without its results file (None: not a pytest suite)."""
    if " -m pytest" not in test_command:
        return None
    args = test_command.split(" -m pytest", 1)[1].split("|")[0].split("2>&1")[0]
    return " ".join(a for a in shlex.split(args) if not a.startswith("--junitxml"))


def suite_coverage(probe, untraced: Collection[str] = ()) -> Coverage:
    """The traced run of `probe`'s gold suite (see module doc), cached per image; empty when the suite is not
    pytest's or cannot run traced. A suite that outlasts `TRACE_SECONDS` traced gives what it ran so far.
    `untraced`: standard-library modules (top-level names) left out, for speed (`re`, `os`: hot, and never a
    fault's target)."""
    from cligym_env.gold import load_gold
    from cligym_env.runtime.cache import cache_dir
    from cligym_env.runtime.containers import exec_once, remove_container, start_container

    cache = cache_dir("coverage-v1") / f"{probe.image.replace('/', '_').replace(':', '_')}.json"
    if cache.exists():
        return _coverage(json.loads(cache.read_text()))
    args = pytest_arguments(load_gold(probe.gold).spec.test_command)
    if args is None:
        return Coverage()
    args += " -q -p no:cacheprovider"
    container = start_container(probe.image, network=False, workdir=probe.workdir)
    try:
        script = (
            f"PYTHONDONTWRITEBYTECODE=1 timeout -s TERM {TRACE_SECONDS} python -c {shlex.quote(_TRACE_SCRIPT)} "
            f"{shlex.quote(args)} {shlex.quote(json.dumps(RUNNER_PARTS))} {TESTS_PER_LINE} "
            f"{shlex.quote(json.dumps(sorted(untraced)))} 2>/dev/null "
            "| grep '^@@coverage '"
        )
        output = exec_once(container, script, timeout=TRACE_SECONDS + 60, output_cap=256 << 20).output
    finally:
        remove_container(container)
    line = next((ln for ln in output.splitlines() if ln.startswith("@@coverage ")), None)
    data = json.loads(line.removeprefix("@@coverage ")) if line else {}
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(cache)
    return _coverage(data)


def _coverage(data: dict) -> Coverage:
    return Coverage(
        tests=list(data.get("tests", [])),
        lines={
            path: {int(n): (entry[0], entry[1]) for n, entry in per_file.items()}
            for path, per_file in data.get("lines", {}).items()
        },
        calls=dict(data.get("calls", {})),
        files={key: (entry[0], entry[1]) for key, entry in data.get("files", {}).items()},
    )


@dataclass
class Screen:
    """What the watched tests did: `passed`/`failed` counts, pytest's exit code."""

    code: int
    passed: int
    failed: int

    @property
    def conclusive_pass(self) -> bool:
        """Every watched test that ran passed (and some ran): the fault changed nothing they can see."""
        return self.code == 0 and self.passed > 0 and self.failed == 0


def screen(container, test_command: str, workdir: str, watch: list[str]) -> Screen | None:
    """Run only the `watch` tests (node ids) in `container`, in a login shell (profile faults count), stopping at
    the first failure. None when the suite is not pytest's or the run said nothing parseable."""
    from cligym_env.runtime.containers import exec_once

    args = pytest_arguments(test_command)
    if args is None or not watch:
        return None
    inner = (
        f"cd {shlex.quote(workdir)} && timeout -s KILL {SCREEN_SECONDS} python -c {shlex.quote(_SCREEN_SCRIPT)} "
        f"{shlex.quote(args)} {shlex.quote(json.dumps(sorted(watch)))} 2>&1 | tail -c 2000"
    )
    result = exec_once(
        container, f"bash -lc {shlex.quote(inner)}", timeout=SCREEN_SECONDS + 30, workdir=workdir
    )
    match = re.search(r"^@@screen (\{.*\})$", result.output, re.MULTILINE)
    if not match:
        return None
    data = json.loads(match[1])
    return Screen(int(data.get("code", -1)), int(data.get("passed", 0)), int(data.get("failed", 0)))
