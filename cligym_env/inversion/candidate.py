"""Turn a candidate fault (breaking commands + a repair) into a validated task folder, or a rejection."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from cligym_env.errors import CligymError
from cligym_env.gold import load_gold
from cligym_env.gold_image import verify_gold
from cligym_env.inversion.validate import build_broken_image, tests_in_fresh_container
from cligym_env.specs import load_yaml_model
from cligym_env.task import CATEGORIES, Provenance, Task, TaskSpec, Timeouts, dockerfile_text, write_task
from cligym_env.testing import Outcome

Progress = Callable[[str], None]


class Candidate(BaseModel):
    """A proposed fault: what breaks the gold environment and what repairs it."""

    model_config = ConfigDict(extra="forbid")

    gold: str
    """The gold environment to break."""
    title: str
    """Short title of the fault, as a user would name the symptom."""
    fault_family: str
    """The family that proposed it."""
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
    difficulty: str | None = None
    max_steps: int = 30
    id: str | None = None
    """Task id; default `<gold>-<family>-<hash of the commands>`."""

    def task_id(self) -> str:
        if self.id:
            return self.id
        digest = hashlib.sha256("\n".join(self.break_commands).encode()).hexdigest()[:8]
        return f"{self.gold}-{self.fault_family}-{digest}".lower().replace("_", "-")


class Rejected(CligymError):
    """A candidate that did not become a task; the message says why."""


def load_candidates(path: Path) -> list[Candidate]:
    """A YAML file with a `candidates:` list (see `tasks/seeds/`)."""

    class _File(BaseModel):
        candidates: list[Candidate]

    return load_yaml_model(path, _File).candidates


def make_task(
    candidate: Candidate, dest_root: Path, provenance: Provenance, progress: Progress | None = None
) -> Task:
    """Build the broken image, find FAIL_TO_PASS / PASS_TO_PASS against the gold's passing set,
    check the repair in a fresh container, and write the task folder. Raises Rejected with the reason."""
    say = progress or (lambda _msg: None)
    gold = load_gold(candidate.gold)
    record = gold.record() or verify_gold(gold, progress=progress)
    task_id = candidate.task_id()
    if (dest_root / task_id).exists():
        raise Rejected(f"{task_id}: a task with this id already exists in {dest_root}")
    dockerfile = dockerfile_text(candidate.break_commands, comment=candidate.title)
    image = build_broken_image(gold.name, dockerfile, repo=f"cligym/task-{task_id}", progress=progress)
    spec = TaskSpec(
        id=task_id,
        gold=gold.name,
        title=candidate.title,
        instruction=candidate.instruction,
        hint=candidate.hint,
        fault_family=candidate.fault_family,
        category=candidate.category,
        difficulty=candidate.difficulty,
        fail_to_pass=["placeholder"],
        workdir=gold.spec.workdir,
        test_command=gold.spec.test_command,
        results=gold.spec.results,
        network=gold.spec.network,
        max_steps=candidate.max_steps,
        timeouts=Timeouts(tests=float(gold.spec.test_timeout)),
        provenance=provenance.model_copy(update={"gold_image": record.image}),
    )
    probe = Task(dest_root / task_id, spec)
    say(f"{task_id}: running tests in the broken image")
    broken, _ = tests_in_fresh_container(image, probe)
    healthy = set(record.passing)
    fail_to_pass = sorted(t for t in healthy if broken.status_of(t) is not Outcome.PASSED)
    pass_to_pass = sorted(healthy - set(fail_to_pass))
    if not fail_to_pass:
        raise Rejected(f"{task_id}: no test flipped from pass to fail ({broken.summary()})")
    spec = spec.model_copy(update={"fail_to_pass": fail_to_pass, "pass_to_pass": pass_to_pass})
    probe.spec = spec
    say(f"{task_id}: {len(fail_to_pass)} tests broke; checking the repair")
    repaired, output = tests_in_fresh_container(image, probe, before_tests=candidate.solution)
    still = [t for t in fail_to_pass + pass_to_pass if repaired.status_of(t) is not Outcome.PASSED]
    if still:
        raise Rejected(
            f"{task_id}: the repair leaves {len(still)} target tests failing (e.g. {still[0]}); "
            f"repair output tail:\n{output[-600:]}"
        )
    return write_task(dest_root, spec, dockerfile, candidate.solution)
