"""What a broken test run showed, in words a problem statement may quote: never a leak term.

`error_excerpt` picks a few lines around the first error of a run's output (pytest's `E   ` lines and summary,
tracebacks, cargo, prove, the shell), `symptoms_seen` the exception names it mentions, and `observe` gathers
them with the counts and the failing test ids into an `Observed`, the only input of the statement templates.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from cligym_env.testing import TestReport
from cligym_env.testing.runner import OUTPUT_TAIL

_EXCEPTION = re.compile(r"\b([A-Z][A-Za-z]+(?:Error|Exception|Warning))\b")
_PHRASES = (
    "Permission denied",
    "command not found",
    "No such file or directory",
    "cannot open shared object file",
    "Too many open files",
    "invalid ELF header",
    "file too short",
    "Name or service not known",
    "certificate verify failed",
    "Read-only file system",
)
# Where a test run's trouble shows: pytest's `E   ` lines and summary, tracebacks, cargo, prove, the shell.
_PYTEST_E = re.compile(r"^E\s{2,}\S")
_SUMMARY = re.compile(r"^(FAILED|ERROR)\s+\S+")
ERROR_LINE = re.compile(
    r"Traceback \(most recent call last\)|\b\w+(Error|Exception)\b:|panicked at|^error(\[\w+\])?:|^not ok\b|"
    r"Can't locate|cannot open shared object|command not found|Permission denied|No such file or directory|"
    r"Segmentation fault|core dumped|^Failed test|^Dubious|\bFATAL\b|\bfatal:"
)
_SEPARATOR = re.compile(r"^\s*([=_\-!*]{5,}|(_ ){3,})")
_NOISE = re.compile(r"generated xml file|cligym", re.I)  # the harness's own plumbing, not the project's
_PATH = re.compile(r"(?<![\w.:/~-])(/(?:[\w.+@-]+/)+[\w.+@-]*)")
_MAX_LINE = 160
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[()][A-Za-z0-9]")


def symptoms_seen(report: TestReport, leak_terms: tuple[str, ...]) -> list[str]:
    """Exception names and error phrases in the test output, most frequent first, none that leaks the fix."""
    text = plain_output(report.output_tail or "")
    found = Counter(_EXCEPTION.findall(text))
    for phrase in _PHRASES:
        if phrase.lower() in text.lower():
            found[phrase] += 5
    return [s for s, _ in found.most_common(6) if not leaks(s, leak_terms) and s not in ("AssertionError",)][
        :2
    ]


def plain_output(text: str) -> str:
    """A test run's output without terminal colours and carriage returns."""
    return _ANSI.sub("", text).replace("\r", "")


def leaks(text: str, leak_terms: tuple[str, ...]) -> list[str]:
    """The leak terms (fix-revealing strings) that occur in `text`, case-insensitively."""
    lowered = text.lower()
    return [t for t in leak_terms if t.lower() in lowered]


def user_command(command: str) -> str:
    """The test command as a developer would type it, without the harness's plumbing (results file, tee)."""
    short = (
        re.sub(r"\s*(?:2>&1\s*)?\|\s*tee\s+\S+\s*$", "", command)
        .split("--junitxml")[0]
        .replace("-p no:cacheprovider", "")
        .replace(" -q ", " ")
        .strip()
    )
    return re.sub(r"\s+", " ", short)


def _trim_paths(line: str, workdir: str) -> str:
    """Paths outside the project cut to their last part: where a file lives can give the repair away."""

    def cut(match: re.Match) -> str:
        path = match[1]
        if path == workdir or path.startswith(workdir.rstrip("/") + "/"):
            return path
        return "…/" + path.rstrip("/").rsplit("/", 1)[-1]

    return _PATH.sub(cut, line)


def error_excerpt(output: str, leak_terms: tuple[str, ...], workdir: str, max_lines: int = 6) -> list[str]:
    """A few lines around the first error of a test run's output, as a developer would paste them.

    No line contains a leak term (such lines are left out), paths outside `workdir` are cut to their last part,
    separators and blank lines go, long lines are shortened. Empty when nothing in the output looks like an
    error or every candidate leaks.

    Example:
        >>> error_excerpt("tests/test_a.py:3: in <module>\\nE   ImportError: no module 'x'\\n", (), "/testbed")
        ['tests/test_a.py:3: in <module>', "E   ImportError: no module 'x'"]
    """
    lines = [ln.rstrip() for ln in plain_output(output).splitlines()]
    if len(output) >= OUTPUT_TAIL and lines:  # a tail starts mid-line
        lines = lines[1:]
    anchors = [i for i, ln in enumerate(lines) if _PYTEST_E.match(ln)]
    anchors += [i for i, ln in enumerate(lines) if _SUMMARY.match(ln)]
    anchors += [i for i, ln in enumerate(lines) if ERROR_LINE.search(ln)]
    for anchor in dict.fromkeys(anchors):
        if not leaks(lines[anchor], leak_terms):
            out = _excerpt_at(lines, anchor, leak_terms, workdir, max_lines)
            if out:
                return out
    return []


def _excerpt_at(
    lines: list[str], anchor: int, leak_terms: tuple[str, ...], workdir: str, max_lines: int
) -> list[str]:
    """Up to `max_lines` kept lines from two before `anchor` (none before a summary line) to the next separator."""
    out: list[str] = []
    start = anchor if _SUMMARY.match(lines[anchor]) else max(0, anchor - 2)
    for index in range(start, min(len(lines), anchor + 3 * max_lines)):
        line = lines[index]
        if _SEPARATOR.match(line):
            if index > anchor:
                break
            out = []  # context from the section before does not belong to this error
            continue
        if not line.strip() or _NOISE.search(line) or leaks(line, leak_terms):
            continue
        line = _trim_paths(line, workdir)
        if leaks(line, leak_terms) or (out and out[-1] == line):
            continue
        out.append(line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 1] + "…")
        if len(out) >= max_lines:
            break
    return out


@dataclass(frozen=True)
class Observed:
    """What the broken run showed, in the words a statement may use."""

    project: str
    workdir: str
    command: str
    n_fail: int
    n_total: int
    failing: tuple[str, ...]
    """Failing test ids that may be named (none leaks)."""
    excerpt: tuple[str, ...]
    seen: tuple[str, ...]

    @property
    def all_fail(self) -> bool:
        return self.n_fail >= self.n_total


def observe(project: str, workdir: str, command: str, broken: TestReport, fail_to_pass: list[str], n_total: int,
            leak_terms: tuple[str, ...]) -> Observed:  # fmt: skip
    """The facts of a broken run a statement may state: nothing in them contains a leak term."""
    return Observed(
        project=project,
        workdir=workdir,
        command=user_command(command),
        n_fail=len(fail_to_pass),
        n_total=n_total,
        failing=tuple(t for t in sorted(fail_to_pass) if len(t) <= _MAX_LINE and not leaks(t, leak_terms)),
        excerpt=tuple(error_excerpt(broken.output_tail or "", leak_terms, workdir)),
        seen=tuple(symptoms_seen(broken, leak_terms)),
    )
