"""Hand-written candidate faults (`tasks/seeds/*.yaml`): validated by the same pipeline as generated ones."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cligym_env.gold import load_gold
from cligym_env.inversion.pipeline import GoldWorkspace, Proposal, Rejection, run_attempt
from cligym_env.specs import load_yaml_model
from cligym_env.task import CATEGORIES, Provenance, Task

Progress = Callable[[str], None]
Rejected = Rejection  # the name callers of this module know


class Candidate(BaseModel):
    """A proposed fault: what breaks the gold environment, what repairs it, and the problem statement."""

    model_config = ConfigDict(extra="forbid")

    gold: str
    """The gold environment to break."""
    title: str
    """Short title of the fault, as a user would name the symptom."""
    fault_family: str
    """The family it belongs to."""
    category: str = Field(pattern="^(" + "|".join(CATEGORIES) + ")$")
    """One of the paper's categories."""
    break_commands: list[str] = Field(min_length=1)
    """Shell commands that break the environment; each becomes a Dockerfile `RUN` line."""
    solution: str = Field(min_length=1)
    """The repair, a shell script run as root in the broken container."""
    instruction: str = Field(min_length=1)
    """The symptom a user would report, never the cause or the fix."""
    hint: str | None = None
    """Optional nudge appended to the instruction."""
    id: str | None = None
    """Task id; default `<gold>-<family>-<hash of the commands>`."""

    def task_id(self) -> str:
        if self.id:
            return self.id
        digest = hashlib.sha256("\n".join(self.break_commands).encode()).hexdigest()[:8]
        return f"{self.gold}-{self.fault_family}-{digest}".lower().replace("_", "-")

    def proposal(self) -> Proposal:
        return Proposal(
            break_commands=self.break_commands,
            repair_commands=[self.solution.strip()],
            family=self.fault_family,
            category=self.category,
            title=self.title,
            signature=f"manual:{self.task_id()}",
        )


def load_candidates(path: Path) -> list[Candidate]:
    """A YAML file with a `candidates:` list (see `tasks/seeds/`)."""

    class _File(BaseModel):
        candidates: list[Candidate]

    return load_yaml_model(path, _File).candidates


def make_task(
    candidate: Candidate, dest_root: Path, provenance: Provenance, progress: Progress | None = None
) -> Task:
    """Validate the candidate like any generated proposal (live break, rebuild, repair) and write the task with
    its hand-written statement. Raises Rejection with the reason."""
    task_id = candidate.task_id()
    if (dest_root / task_id).exists():
        raise Rejection("exists", f"{task_id}: a task with this id already exists in {dest_root}")
    ws = GoldWorkspace(load_gold(candidate.gold), progress=progress)
    try:
        return run_attempt(
            ws, candidate.proposal(), dest_root, task_id, provenance, random.Random(0),
            writer=lambda *_: (candidate.instruction, candidate.hint or ""),
        )  # fmt: skip
    finally:
        ws.close()
