"""The task index: one line per task (`index.jsonl` beside the task folders), so a set loads in seconds.

A `task.yaml` holds its FAIL_TO_PASS and PASS_TO_PASS lists (thousands of ids on large suites: 123 MB for 2,001
tasks), and most commands need none of it: stats, audits, splits and task selection read the gold, the family,
the counts and the repair. The index keeps exactly that per task (`TaskSummary`), with a digest of the task's
files (`task.yaml`, `Dockerfile`, `solution.sh`).

Never trusted silently: every load checks each folder against its line. A folder whose files changed (digest),
a new folder, a removed one or an unreadable line is re-read from its files, the index is rewritten, and one
message says what changed. Checking reads every task's files once per machine; after that a local stamp file
(`.index-stamps.json`, size and mtime per task, not committed) skips the re-hashing of untouched folders.
The full spec of a task is loaded only when used (`Task.spec`).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from cligym_env.errors import SpecError
from cligym_env.specs import write_atomic

INDEX_FILE = "index.jsonl"
STAMPS_FILE = ".index-stamps.json"
INDEX_VERSION = 1
TASK_FILES = ("task.yaml", "Dockerfile", "solution.sh")


@dataclass(frozen=True)
class TaskSummary:
    """What commands over a whole set read from a task, without its test lists."""

    id: str
    gold: str
    fault_family: str
    category: str
    difficulty: str | None
    signature: str | None
    inverter: str
    created: str
    fail_to_pass: int
    """How many tests fail (the list stays in task.yaml)."""
    pass_to_pass: int
    statement: str
    """A digest of the instruction (equal statements, equal digests)."""
    solution: str
    """The text of solution.sh."""
    break_lines: int
    digest: str
    """sha256 of the task's files: the index line is current while it matches."""

    @property
    def families(self) -> set[str]:
        return set(self.fault_family.split("+"))


def summarize(task, digest: str | None = None) -> TaskSummary:
    """The summary of a loaded `Task` (its files are read for the digest unless given)."""
    spec = task.spec
    return TaskSummary(
        id=spec.id,
        gold=spec.gold,
        fault_family=spec.fault_family,
        category=spec.category,
        difficulty=spec.difficulty,
        signature=spec.signature,
        inverter=spec.provenance.inverter,
        created=str(spec.provenance.created),
        fail_to_pass=len(spec.fail_to_pass),
        pass_to_pass=len(spec.pass_to_pass),
        statement=hashlib.sha256(spec.instruction.strip().encode()).hexdigest()[:16],
        solution=task.solution_script(),
        break_lines=len(task.break_lines()),
        digest=digest or folder_digest(task.path),
    )


def folder_digest(folder: Path) -> str:
    """sha256 over the task's files (a missing one counts as empty)."""
    h = hashlib.sha256()
    for name in TASK_FILES:
        try:
            data = (folder / name).read_bytes()
        except FileNotFoundError:
            data = b""
        h.update(name.encode() + b"\0" + str(len(data)).encode() + b"\0" + data)
    return h.hexdigest()


def _stamp(folder: Path) -> str | None:
    """Size and mtime of the task's files, or None when task.yaml is gone."""
    parts = []
    for name in TASK_FILES:
        try:
            st = os.stat(folder / name)
        except FileNotFoundError:
            if name == "task.yaml":
                return None
            parts.append("-")
            continue
        parts.append(f"{st.st_size}:{st.st_mtime_ns}")
    return "/".join(parts)


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def task_index(root: Path, *, write: bool = True, say: Callable[[str], None] = _stderr) -> list[TaskSummary]:
    """The summaries of every task folder directly under `root`, sorted by id, checked against the folders.

    Entries that do not match their folder are rebuilt from the files (a malformed task raises SpecError, as
    loading it would); if any were, the index is rewritten (when `write` and `root` is writable) and `say`
    tells what changed. A missing index is built the same way.
    """
    from cligym_env.task import load_task

    root = Path(root)
    folders = {p.name: p for p in root.iterdir() if (p / "task.yaml").is_file()} if root.is_dir() else {}
    indexed, unreadable = read_index(root)
    stamps_path = root / STAMPS_FILE
    old_stamps = _read_json(stamps_path)
    stamps: dict[str, list[str]] = {}
    out: list[TaskSummary] = []
    added, changed = [], []
    for name in sorted(folders):
        folder = folders[name]
        stamp = _stamp(folder)
        entry = indexed.get(name)
        cached = old_stamps.get(name)
        if entry is not None and cached and cached[0] == stamp and cached[1] == entry.digest:
            digest = entry.digest  # untouched since it was last checked on this machine
        else:
            digest = folder_digest(folder)
        if entry is None or entry.digest != digest:
            (changed if entry is not None else added).append(name)
            entry = summarize(load_task(folder), digest)
            if entry.id != name:
                raise SpecError(f"{folder / 'task.yaml'}: id '{entry.id}' is not its folder's name '{name}'")
        stamps[name] = [stamp, digest]
        out.append(entry)
    removed = sorted(set(indexed) - set(folders))
    stale = added or changed or removed or unreadable
    if indexed and stale:
        say(
            f"{root / INDEX_FILE} was stale ({len(added)} tasks added, {len(changed)} changed, {len(removed)} "
            f"removed, {unreadable} unreadable lines): rebuilt those from the task folders"
        )
    if write and os.access(root, os.W_OK) and folders:
        if stale or not (root / INDEX_FILE).is_file():
            write_atomic(root / INDEX_FILE, "".join(_line(e) for e in out))
        if stamps != old_stamps:
            write_atomic(stamps_path, json.dumps(stamps, separators=(",", ":")))
    return out


def read_index(root: Path) -> tuple[dict[str, TaskSummary], int]:
    """The index's entries by id as written (unchecked), and how many lines could not be read."""
    path = Path(root) / INDEX_FILE
    if not path.is_file():
        return {}, 0
    names = {f.name for f in fields(TaskSummary)}
    entries, bad = {}, 0
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            data = json.loads(line)
            if data.pop("v", None) != INDEX_VERSION or set(data) != names:
                raise ValueError("another version")
            entry = TaskSummary(**data)
        except (ValueError, TypeError):
            bad += 1
            continue
        entries[entry.id] = entry
    return entries, bad


def _line(entry: TaskSummary) -> str:
    return json.dumps({"v": INDEX_VERSION, **asdict(entry)}, ensure_ascii=False, separators=(",", ":")) + "\n"


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def refresh_indexes(paths) -> None:
    """Bring the index of each folder of tasks in `paths` in step after a command wrote tasks there (a task folder
    itself has no index: its parent's is refreshed). Quiet: the change is the command's own."""
    roots = {Path(p).parent if (Path(p) / "task.yaml").is_file() else Path(p) for p in paths}
    for root in sorted(roots):
        if root.is_dir():
            task_index(root, say=lambda _message: None)
