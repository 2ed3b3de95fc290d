"""Task specs: one broken environment, the tests that show it, and a verified repair.

A task lives in one folder (`tasks/generated/<id>/`):
- `task.yaml`   a `TaskSpec` (instruction, FAIL_TO_PASS, PASS_TO_PASS, test command, limits, provenance);
- `Dockerfile`  `FROM ${CLIGYM_GOLD_IMAGE}` then the breaking `RUN` lines;
- `solution.sh` the oracle repair (never copied into the image);
- `files/`      optional: host files the break needs (a wheel), which the Dockerfile copies to `FILES_DIR`.
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cligym_env.errors import SpecError
from cligym_env.gold import ResultsSpec
from cligym_env.index import TaskSummary, summarize, task_index
from cligym_env.specs import dump_yaml_model, load_yaml_model, write_atomic

TASK_FILE = "task.yaml"
SOLUTION_FILE = "solution.sh"
BROKEN_OUTPUT_FILE = "broken-output.txt"
TASK_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,127}$"
FILES_DIR = "/tmp/cligym-files"
"""Where a break finds the task's `files/` (`COPY files/ /tmp/cligym-files/`); the break removes it."""
CATEGORIES = (
    "file-system",
    "infrastructure",
    "dependencies-runtime",
    "network-security",
    "compatibility",
    "concurrency",
    "source-logic",
    "other",
)


class Timeouts(BaseModel):
    """Wall-clock limits, in seconds."""

    model_config = ConfigDict(extra="forbid")

    command: float = Field(120.0, gt=0)
    """One agent command; then it is interrupted and the agent told so."""
    tests: float = Field(600.0, gt=0)
    """One run of the test command."""
    episode: float = Field(3600.0, gt=0)
    """A whole episode (used by rollouts)."""


class Provenance(BaseModel):
    """Who made the task and how, so it can be re-made."""

    model_config = ConfigDict(extra="forbid")

    inverter: str
    """`heuristic`, `llm`, `manual`, …"""
    model: str | None = None
    seed: int | None = None
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    gold_image: str | None = None
    """The gold image (content-hash tag) the task was validated against."""


class TaskSpec(BaseModel):
    """The contents of `task.yaml`."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=TASK_ID_PATTERN)
    """Unique id, also the folder name."""
    gold: str
    """Name of the gold environment it was inverted from."""
    # Text bounds: generous (the longest of 2,001 tasks: title 193, instruction 465, hint 283, test_command
    # 354 characters), so that only a broken or hostile spec is refused, never a real one.
    title: str = Field(min_length=1, max_length=1 << 10)  # composite titles name every fault: leave room
    """A short title (for listings and for the inverter's diversity prompt)."""
    instruction: str = Field(min_length=1, max_length=64 << 10)
    """The problem statement: the symptom a user sees, never the cause or the fix."""
    hint: str | None = Field(None, max_length=4 << 10)
    """Optional hint appended to the instruction (the `.hard` variant drops it)."""
    fault_family: str
    """The fault family that made it (see `cligym_env.inversion`)."""
    category: Literal[CATEGORIES]  # type: ignore[valid-type]
    """One of the paper's categories."""
    difficulty: Literal["easy", "medium", "hard"] | None = None
    """Calibrated by how many steps the heuristic repair agent needs (`cligym tasks calibrate`)."""
    signature: str | None = None
    """Canonical fault signature (`family:target`, sorted, joined by `+`): two tasks with one are duplicates."""
    fail_to_pass: list[str] = Field(min_length=1)
    """Tests that pass in the gold env, fail in the broken one, and must pass after the repair."""
    pass_to_pass: list[str] = Field(default_factory=list)
    """Tests that pass in both and must keep passing."""
    workdir: str = "/testbed"
    test_command: str = Field(max_length=16 << 10)
    results: ResultsSpec = Field(default_factory=ResultsSpec)
    network: bool = False
    max_steps: int = Field(30, gt=0, le=1000)
    timeouts: Timeouts = Field(default_factory=Timeouts)
    provenance: Provenance

    @model_validator(mode="after")
    def _lists_are_disjoint(self) -> TaskSpec:
        both = set(self.fail_to_pass) & set(self.pass_to_pass)
        if both:
            raise ValueError(f"{len(both)} tests are in both fail_to_pass and pass_to_pass, e.g. {min(both)}")
        return self

    def prompt(self, hard: bool = False) -> str:
        """The instruction an agent sees (with the hint unless `hard`)."""
        if self.hint and not hard:
            return f"{self.instruction.rstrip()}\n\nHint: {self.hint.strip()}"
        return self.instruction


class Task:
    """A task folder on disk. Listed from the index (`list_tasks`), it knows its `summary` and reads its full
    spec (task.yaml, with the test lists) only when `spec` is first used."""

    def __init__(self, path: Path, spec: TaskSpec | None = None, summary: TaskSummary | None = None):
        self.path = path
        self._spec = spec
        self._summary = summary

    def __repr__(self) -> str:
        return f"Task({self.id!r})"

    @property
    def spec(self) -> TaskSpec:
        if self._spec is None:
            self._spec = load_yaml_model(self.path / TASK_FILE, TaskSpec)
        return self._spec

    @spec.setter
    def spec(self, value: TaskSpec) -> None:
        self._spec = value
        self._summary = None

    @property
    def summary(self) -> TaskSummary:
        """Gold, family, counts, repair: from the index when listed, else from the spec and files."""
        if self._summary is None:
            self._summary = summarize(self)
        return self._summary

    @property
    def id(self) -> str:
        if self._spec is None and self._summary is not None:
            return self._summary.id
        return self.spec.id

    @property
    def dockerfile(self) -> Path:
        return self.path / "Dockerfile"

    @property
    def solution(self) -> Path:
        return self.path / SOLUTION_FILE

    @property
    def image_repo(self) -> str:
        return f"cligym/task-{self.spec.id}"

    def solution_script(self) -> str:
        try:
            return self.solution.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError(f"{self.path}: task has no {SOLUTION_FILE}") from None

    def break_lines(self) -> list[str]:
        """The breaking commands after the FROM line: shell commands without their `RUN` (each line of a
        continued `RUN a \\ && b` is one), other instructions (`ENV ...`) as written; the hygiene wrapper's
        own commands (`inversion/hygiene.py`) are not breaking commands and are left out."""
        lines = self.dockerfile.read_text(encoding="utf-8").splitlines()
        out = []
        for line in (ln.strip() for ln in lines):
            if not line or line.startswith(("#", "ARG ", "FROM ")):
                continue
            line = line.removesuffix("\\").rstrip()
            if HYGIENE_STATE in line:
                continue
            if line.startswith("RUN "):
                out.append(line[4:].strip())
            elif line.startswith("&& "):
                out.append(line[3:].strip())
            else:
                out.append(line)
        return out


def load_task(path: str | Path) -> Task:
    """Load a task folder (or its `task.yaml`); a malformed one raises SpecError naming file and field."""
    path = Path(path)
    if path.is_file() and path.name == TASK_FILE:
        path = path.parent
    if not path.is_dir():
        raise SpecError(f"task folder {path} does not exist")
    spec = load_yaml_model(path / TASK_FILE, TaskSpec)
    if not (path / "Dockerfile").is_file():
        raise SpecError(f"{path}: task has no Dockerfile")
    return Task(path.resolve(), spec)


def list_tasks(root: Path) -> list[Task]:
    """Every task folder directly under `root` (or `root` itself, a task folder), sorted by id: listed from the
    index (`index.py`, checked against the folders and rebuilt where stale), full specs read on first use."""
    root = Path(root)
    if (root / TASK_FILE).is_file():
        return [load_task(root)]
    return [Task((root / s.id).resolve(), summary=s) for s in task_index(root)]


HYGIENE_STATE = "/run/.cligym-hygiene"
"""Where the hygiene wrapper keeps its state while a broken image builds; its commands name it."""
INSTRUCTIONS = ("RUN", "ENV", "USER", "WORKDIR", "COPY")


def outcome_key(family: str, fail_to_pass: list[str]) -> str:
    """Near-duplicate key, per gold: the fault family (or families) and exactly which tests it makes fail."""
    digest = hashlib.sha256("\n".join(sorted(fail_to_pass)).encode()).hexdigest()[:16]
    return f"outcome:{family}:{digest}"


def dockerfile_text(run_lines: list[str], comment: str = "") -> str:
    """A task Dockerfile: the gold image, then the breaking commands, one per line.

    Consecutive shell commands share one `RUN` instruction (continuation lines joined by `&&`), so they run in
    one shell, as they did in the live container the inverter checked them in, and the build commits one
    layer: on a storage driver without native diffs each layer commit walks the whole image (seconds).
    """
    head = ["ARG CLIGYM_GOLD_IMAGE", "FROM ${CLIGYM_GOLD_IMAGE}"]
    if comment:
        head.insert(0, f"# {comment}")
    body: list[str] = []
    for is_instruction, group in itertools.groupby(
        run_lines, key=lambda ln: ln.split(" ", 1)[0] in INSTRUCTIONS
    ):
        lines = list(group)
        body += lines if is_instruction else ["RUN " + " \\\n && ".join(lines)]
    return "\n".join(head + body) + "\n"


def single_run_command(dockerfile: str) -> str | None:
    """The shell command of a task Dockerfile that is the gold image plus one shell-form `RUN`; else None.

    Continuation lines are joined as Docker joins them (the backslash and the newline go).
    """
    logical = dockerfile.replace("\\\n", "")
    lines = [ln.strip() for ln in logical.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if lines[:2] != ["ARG CLIGYM_GOLD_IMAGE", "FROM ${CLIGYM_GOLD_IMAGE}"] or len(lines) != 3:
        return None
    command = lines[2].removeprefix("RUN ").strip()
    return command if lines[2].startswith("RUN ") and not command.startswith("[") else None


def write_task(dest_root: Path, spec: TaskSpec, dockerfile: str, solution: str,
               files: tuple[tuple[str, str], ...] = ()) -> Task:  # fmt: skip
    """Write a task folder atomically: everything goes to a hidden temp folder that is renamed into place.

    `files` are (host path, path under `files/`) pairs copied into the folder, for the Dockerfile's COPY.
    """
    final = dest_root / spec.id
    if final.exists():
        raise SpecError(f"task folder {final} already exists")
    tmp = dest_root / f".{spec.id}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    write_atomic(tmp / TASK_FILE, dump_yaml_model(spec))
    write_atomic(tmp / "Dockerfile", dockerfile)
    write_atomic(tmp / SOLUTION_FILE, solution if solution.endswith("\n") else solution + "\n")
    (tmp / SOLUTION_FILE).chmod(0o755)
    if files:
        copy_files(files, tmp / "files")
    tmp.rename(final)
    return Task(final.resolve(), spec)


def copy_files(files: tuple[tuple[str, str], ...], folder: Path) -> Path:
    """Copy (host path, path under `folder`) pairs into `folder`, a task's or a build context's `files/`."""
    for host, dest in files:
        (folder / dest).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(host, folder / dest)
    return folder
