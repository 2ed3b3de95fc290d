"""Train / test splits: by gold project (the default), or by fault family and repair shape.

**By gold** (`split_of`): Pass@1 is measured on projects never seen in training.

A gold goes to `test` when a stable hash of its name (SHA-256 of `"<salt>:<name>"`, read as a fraction of
[0, 1)) falls below `test_fraction`; the split of a gold never depends on which other golds exist, so adding
golds never moves old ones. With few golds the threshold alone can leave a split empty; then, and only then,
`split_of(..., golds=[...])` moves the gold with the smallest hash into `test` (or the largest into `train`),
so that both splits are non-empty whenever there are two golds or more. Once the rule alone fills both, the
fallback is never used again.

**By fault** (`fault_split`): Pass@1 is measured on faults never seen in training, repaired by commands of a
shape never seen in training. A fault family is held out by the same stable hash as a gold. A task is in
`test` when *every* family it is made of (a composite's families are joined with `+`) is held out; a task is in
`train` when none of its families is held out *and* none of its repair shapes (`repair_shapes`) is a shape of a
test task's repair. Every other task would straddle the two (a composite of a held-out and a kept family, or a
kept family repaired the way a held-out one is) and is in neither: train and test share no family and no repair
shape. (Sending the shape-sharing tasks to `test` instead pulls their families along, and with the few generic
shapes of today's repairs that swallows nearly the whole set.)

Example:
    >>> split_of("markupsafe")
    'test'
    >>> repair_shape("pip install --force-reinstall --no-deps attrs==23.2.0")
    'pip install --force-reinstall --no-deps <pkg>==<ver>'
"""

from __future__ import annotations

import hashlib
import re
import shlex
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from cligym_env.task import Task

Split = Literal["train", "test"]
SPLITS = ("train", "test", "all")
SPLIT_BY = ("gold", "fault")
DEFAULT_SALT = "cligym-v1"
DEFAULT_TEST_FRACTION = 0.3


def gold_fraction(gold_name: str, salt: str = DEFAULT_SALT) -> float:
    """The gold's position in [0, 1): the first 8 bytes of SHA-256("<salt>:<name>") over 2**64."""
    digest = hashlib.sha256(f"{salt}:{gold_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(
    gold_name: str,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    salt: str = DEFAULT_SALT,
    golds: Iterable[str] | None = None,
) -> Split:
    """`"test"` or `"train"` for a gold; pass every known gold as `golds` to keep both splits non-empty."""
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], not {test_fraction}")
    position = gold_fraction(gold_name, salt)
    split: Split = "test" if position < test_fraction else "train"
    known = sorted(set(golds or ()) | {gold_name}, key=lambda g: gold_fraction(g, salt))
    if len(known) >= 2 and 0.0 < test_fraction < 1.0:
        in_test = [g for g in known if gold_fraction(g, salt) < test_fraction]
        if not in_test and gold_name == known[0]:
            return "test"
        if len(in_test) == len(known) and gold_name == known[-1]:
            return "train"
    return split


def splits_of(
    golds: Iterable[str], test_fraction: float = DEFAULT_TEST_FRACTION, salt: str = DEFAULT_SALT
) -> dict[str, Split]:
    """The split of every gold in `golds`, with the non-empty fallback applied."""
    names = sorted(set(golds))
    return {g: split_of(g, test_fraction, salt, golds=names) for g in names}


# Tools whose first word after the program is a subcommand (`pip install`), and whose other words are packages.
_SUBCOMMAND_TOOLS = frozenset(
    {"pip", "pip3", "apt-get", "apt", "cargo", "gem", "npm", "conda", "systemctl", "git"}
)
_PACKAGE_TOOLS = frozenset({"pip", "pip3", "apt-get", "apt", "dpkg", "cargo", "cpanm", "gem", "npm", "conda"})
_OPTION_WITH_VALUE = frozenset({"-o"})  # apt-get -o Dpkg::Options::=...: the value is part of the shape
_VERSION_SPEC = re.compile(r"^([A-Za-z0-9_.\[\]-]+)(==|>=|<=|~=|!=|<|>|@)(\S+)$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _commands(line: str) -> list[str]:
    """The simple commands of a shell line, split at `&&`, `||` and `;` outside quotes."""
    out, current, quote, i = [], "", "", 0
    while i < len(line):
        char = line[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif line.startswith(("&&", "||"), i) or char == ";":
            out.append(current)
            current, i = "", i + (1 if char == ";" else 2)
            continue
        current += char
        i += 1
    return [c.strip() for c in [*out, current] if c.strip()]


def _token_shape(token: str, tool: str, position: int) -> str:
    if token in (">", ">>", "<", "|", "2>&1", "2>/dev/null", "&>"):
        return token
    if token[:1] in "'\"" or " " in token:
        return "<text>"
    if match := _VERSION_SPEC.match(token):
        return f"<pkg>{match[2]}<ver>"
    if _ASSIGNMENT.match(token):
        return "<var>=<value>"
    if tool == "chmod" and position == 1:
        return "<mode>"
    if "/" in token:
        return "<path>"
    if token.isdigit():
        return "<num>"
    return "<pkg>" if tool in _PACKAGE_TOOLS else "<arg>"


def repair_shape(command: str) -> str:
    """One repair command with its package names, versions, paths, numbers and texts replaced by placeholders.

    The program, its subcommand (`pip install`) and its options stay: they are what a repair *does*.

    Example:
        >>> repair_shape("chmod 0755 /usr/bin/python3.11")
        'chmod <mode> <path>'
    """
    lexer = shlex.shlex(command, posix=False, punctuation_chars=False)
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: words as they are
        tokens = command.split()
    while tokens and _ASSIGNMENT.match(tokens[0]):  # `VAR=x cmd`: the variables are not the shape
        tokens = tokens[1:]
    if not tokens:
        return "<var>=<value>"
    tool = tokens[0].rsplit("/", 1)[-1]
    shape, position, keep_next = [tool], 0, False
    if tool.startswith("python") and tokens[1:3] and tokens[1] == "-m":  # `python -m pip …` is pip
        tool, shape, tokens = tokens[2], [tool, "-m", tokens[2]], tokens[2:]
    expects_subcommand = tool in _SUBCOMMAND_TOOLS
    for token in tokens[1:]:
        if keep_next or (token.startswith("-") and token != "-"):
            shape.append(token if keep_next or "=" not in token else token.split("=", 1)[0] + "=<value>")
            keep_next = not keep_next and token in _OPTION_WITH_VALUE
        elif expects_subcommand:
            shape.append(token)
            expects_subcommand = False
        else:
            position += 1
            shape.append(_token_shape(token, tool, position))
    return " ".join(shape)


def repair_commands(solution: str) -> list[str]:
    """The commands of a repair script, without comments, the shebang and `set` lines."""
    lines = (ln.strip() for ln in solution.splitlines())
    kept = [ln for ln in lines if ln and not ln.startswith("#") and not re.match(r"set\s+[-+]", ln)]
    return [c for ln in kept for c in _commands(ln)]


def repair_shapes(solution: str) -> frozenset[str]:
    """The shapes of every command of a repair script (see `repair_shape`)."""
    return frozenset(repair_shape(c) for c in repair_commands(solution))


def held_out_families(families: Iterable[str], test_fraction: float = DEFAULT_TEST_FRACTION,
                      salt: str = DEFAULT_SALT) -> set[str]:  # fmt: skip
    """The families held out by hash; with two or more, never none and never all (like `split_of`)."""
    names = sorted(set(families), key=lambda f: gold_fraction(f, salt))
    held = {f for f in names if gold_fraction(f, salt) < test_fraction}
    if len(names) >= 2 and 0.0 < test_fraction < 1.0:
        held = held or {names[0]}
        held = held - {names[-1]} if len(held) == len(names) else held
    return held


@dataclass
class FaultSplit:
    """The split of a task set by fault family and repair shape (see the module docstring)."""

    held_out: set[str] = field(default_factory=set)
    """The held-out families."""
    train: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    """Tasks in neither split: they would share a family or a repair shape with the other side."""

    def split_of(self, task_id: str) -> Split | None:
        """`"train"`, `"test"`, or None for a dropped (or unknown) task."""
        return "train" if task_id in set(self.train) else "test" if task_id in set(self.test) else None

    def summary(self) -> dict:
        return {"held_out_families": sorted(self.held_out), "train": len(self.train), "test": len(self.test),
                "dropped": len(self.dropped)}  # fmt: skip


def fault_split(tasks: Iterable[Task], test_fraction: float = DEFAULT_TEST_FRACTION,
                salt: str = DEFAULT_SALT) -> FaultSplit:  # fmt: skip
    """Split `tasks` so that train and test share no fault family and no repair shape."""
    rows = [(t.id, t.summary.families, repair_shapes(t.summary.solution)) for t in tasks]
    held = held_out_families((f for _, families, _ in rows for f in families), test_fraction, salt)
    test = [(i, shapes) for i, families, shapes in rows if families <= held]
    test_shapes = set().union(*(shapes for _, shapes in test))
    result = FaultSplit(held_out=held, test=sorted(i for i, _ in test))
    for task_id, families, shapes in rows:
        if families <= held:
            continue
        keep = not families & held and not shapes & test_shapes
        (result.train if keep else result.dropped).append(task_id)
    result.train.sort()
    result.dropped.sort()
    return result
