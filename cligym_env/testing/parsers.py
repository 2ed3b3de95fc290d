"""Result parsers: raw results-file bytes -> {test id: Outcome}. One function per format.

Standard library only, with a fallback for its two imports: exported tasks ship this file as is
(`interop.py`), so their verifier reads every results format exactly as the harness does.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable

try:
    from cligym_env.errors import TestRunError
    from cligym_env.testing.report import Outcome
except ImportError:  # shipped alone in an exported task's tests/
    from enum import Enum

    class TestRunError(Exception):  # type: ignore[no-redef]
        """Results that cannot be read."""

    class Outcome(str, Enum):  # type: ignore[no-redef]
        PASSED = "passed"
        FAILED = "failed"
        ERROR = "error"
        SKIPPED = "skipped"


Parser = Callable[[bytes], dict[str, Outcome]]


def parse_junit(data: bytes) -> dict[str, Outcome]:
    """JUnit XML (pytest `--junitxml`, and most other runners): id is `classname::name`.

    A testcase with a <failure> is FAILED, with an <error> is ERROR (pytest: error in setup/teardown),
    with <skipped> is SKIPPED, else PASSED. A test listed twice keeps its worst outcome.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise TestRunError(f"results are not valid JUnit XML: {exc}") from None
    outcomes: dict[str, Outcome] = {}
    rank = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.FAILED: 2, Outcome.ERROR: 3}
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        test_id = f"{classname}::{name}" if classname else name
        tags = {child.tag for child in case}
        if "error" in tags:
            outcome = Outcome.ERROR
        elif "failure" in tags:
            outcome = Outcome.FAILED
        elif "skipped" in tags:
            outcome = Outcome.SKIPPED
        else:
            outcome = Outcome.PASSED
        previous = outcomes.get(test_id)
        if previous is None or rank[outcome] > rank[previous]:
            outcomes[test_id] = outcome
    return outcomes


_RANK = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.FAILED: 2, Outcome.ERROR: 3}


def _keep_worst(outcomes: dict[str, Outcome], test_id: str, outcome: Outcome) -> None:
    previous = outcomes.get(test_id)
    if previous is None or _RANK[outcome] > _RANK[previous]:
        outcomes[test_id] = outcome


_TAP_FILE = re.compile(r"^(\S+\.t) \.+ ?(.*)$")
_TAP_LINE = re.compile(r"^(not )?ok (\d+)\b[^#]*(?:#\s*(\w+))?", re.I)


def parse_tap(data: bytes) -> dict[str, Outcome]:
    """`prove -v` output (TAP per test file): id is `t/file.t::N`, N the test number in that file.

    `ok` is PASSED, `not ok` FAILED; a `# SKIP` directive is SKIPPED, a `# TODO` failure (expected) too.
    Indented lines (subtests) roll up into their parent line. A file that dies before its plan ends has
    its missing numbers absent, which scoring counts as failed; a file with no line at all gets an ERROR
    entry `t/file.t::0` (SKIPPED when prove says the whole file was skipped).
    """
    outcomes: dict[str, Outcome] = {}
    current, seen = None, False
    for line in data.decode("utf-8", errors="replace").splitlines():
        header = _TAP_FILE.match(line)
        if header:
            if current and not seen:
                outcomes[f"{current}::0"] = Outcome.ERROR
            current, seen = header.group(1), False
            if header.group(2).startswith("skipped"):  # `t/x.t .. skipped: Foo::Bar required`
                outcomes[f"{current}::0"], seen = Outcome.SKIPPED, True
            continue
        match = _TAP_LINE.match(line)
        if not (current and match):
            continue
        failed, number, directive = match.group(1), match.group(2), (match.group(3) or "").lower()
        if directive == "skip" or (failed and directive == "todo"):
            outcome = Outcome.SKIPPED
        else:
            outcome = Outcome.FAILED if failed else Outcome.PASSED
        _keep_worst(outcomes, f"{current}::{number}", outcome)
        seen = True
    if current and not seen:
        outcomes[f"{current}::0"] = Outcome.ERROR
    return outcomes


_CARGO_TARGET = re.compile(r"^\s*(?:Running (?:unittests )?(\S+)|Doc-tests (\S+))")
_CARGO_TEST = re.compile(r"^test (.+?) \.\.\. (ok|FAILED|ignored)\b")


def parse_cargo(data: bytes) -> dict[str, Outcome]:
    """`cargo test` output (libtest's pretty format): id is `<target>::<test name>`.

    The target is the source file cargo names on its `Running` line (`src/lib.rs`, `tests/parse.rs`), or
    `doc` for doc tests. `ok` is PASSED, `FAILED` FAILED, `ignored` SKIPPED.
    """
    outcomes: dict[str, Outcome] = {}
    target = "?"
    status = {"ok": Outcome.PASSED, "FAILED": Outcome.FAILED, "ignored": Outcome.SKIPPED}
    for line in data.decode("utf-8", errors="replace").splitlines():
        header = _CARGO_TARGET.match(line)
        if header:
            target = header.group(1) or "doc"
            continue
        match = _CARGO_TEST.match(line)
        if match:
            _keep_worst(outcomes, f"{target}::{match.group(1)}", status[match.group(2)])
    return outcomes


_AUTOMAKE_LINE = re.compile(r"^(PASS|FAIL|XFAIL|XPASS|SKIP|ERROR): (\S.*?)\s*$")


def parse_automake(data: bytes) -> dict[str, Outcome]:
    """automake's parallel test harness (`make check` output): id is the test's name as printed.

    PASS and XFAIL (an expected failure) are PASSED, FAIL and XPASS FAILED, SKIP SKIPPED, ERROR ERROR.
    """
    outcomes: dict[str, Outcome] = {}
    status = {
        "PASS": Outcome.PASSED, "XFAIL": Outcome.PASSED, "FAIL": Outcome.FAILED,
        "XPASS": Outcome.FAILED, "SKIP": Outcome.SKIPPED, "ERROR": Outcome.ERROR,
    }  # fmt: skip
    for line in data.decode("utf-8", errors="replace").splitlines():
        match = _AUTOMAKE_LINE.match(line)
        if match:
            _keep_worst(outcomes, match.group(2), status[match.group(1)])
    return outcomes


PARSERS: dict[str, Parser] = {
    "junit": parse_junit,
    "tap": parse_tap,
    "cargo": parse_cargo,
    "automake": parse_automake,
}


def parse_results(fmt: str, data: bytes) -> dict[str, Outcome]:
    """Parse `data` with the parser registered for `fmt`."""
    try:
        parser = PARSERS[fmt]
    except KeyError:
        raise TestRunError(f"no result parser for format '{fmt}' (known: {', '.join(PARSERS)})") from None
    return parser(data)
