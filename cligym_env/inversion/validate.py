"""Build a task's broken image and check it: FAIL_TO_PASS fail, PASS_TO_PASS pass, `solution.sh` repairs both."""

from __future__ import annotations

import random
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cligym_env.inversion.statement import leaks, write_statement
from cligym_env.runtime.containers import exec_once, remove_container, start_container
from cligym_env.specs import dump_yaml_model, write_atomic
from cligym_env.task import TASK_FILE, Task
from cligym_env.task_image import (
    build_task_image,
    run_task_tests,
    score_task_container,
)
from cligym_env.testing import Outcome, TestReport

Progress = Callable[[str], None]
SOLUTION_TIMEOUT = 600.0


def tests_in_fresh_container(
    image: str, task: Task, before_tests: str | None = None
) -> tuple[TestReport, str]:
    """Start a container of `image`, optionally run a script (the repair), run the tests, remove the container.

    A repair is scored as an agent's would be (`harness.score_container`: processes stopped, project tree
    restored, code files and login variables checked), so an oracle that only works by tampering fails here.
    Returns the report and the script's output.
    """
    since = time.time()
    container = start_container(image, network=task.spec.network, workdir=task.spec.workdir)
    try:
        if before_tests is None:
            return run_task_tests(task, container), ""
        result = exec_once(container, before_tests, timeout=SOLUTION_TIMEOUT, workdir=task.spec.workdir)
        verdict = score_task_container(task, container, since=since, image=image)
        return verdict.report, result.output
    finally:
        remove_container(container)


@dataclass
class ValidationResult:
    """The outcome of `validate_task`: ok, or the problems found."""

    task_id: str
    problems: list[str] = field(default_factory=list)
    broken: TestReport | None = None
    repaired: TestReport | None = None
    seconds: float = 0.0
    broken_passes: list[str] = field(default_factory=list)
    """FAIL_TO_PASS tests that pass in the broken image: the task no longer shows what it says."""

    @property
    def ok(self) -> bool:
        return not self.problems


def _expect(report: TestReport, tests: list[str], passing: bool, label: str) -> list[str]:
    wrong = [t for t in tests if (report.status_of(t) is Outcome.PASSED) != passing]
    if not wrong:
        return []
    state = "pass" if passing else "fail"
    shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
    note = f" [{report.error}]" if report.error else ""
    return [f"{label}: {len(wrong)} of {len(tests)} tests do not {state}: {shown}{note}"]


def validate_task(task: Task, progress: Progress | None = None) -> ValidationResult:
    """Rebuild the broken image; check FAIL_TO_PASS fail and PASS_TO_PASS pass; then check `solution.sh` repairs."""
    started = time.monotonic()
    say = progress or (lambda _msg: None)
    result = ValidationResult(task.id)
    spec = task.spec
    image = build_task_image(task, progress)
    say(f"{task.id}: running tests in the broken image")
    result.broken, _ = tests_in_fresh_container(image, task)
    result.problems += _expect(result.broken, spec.fail_to_pass, False, "broken image, FAIL_TO_PASS")
    result.broken_passes = [t for t in spec.fail_to_pass if result.broken.status_of(t) is Outcome.PASSED]
    result.problems += _expect(result.broken, spec.pass_to_pass, True, "broken image, PASS_TO_PASS")
    say(f"{task.id}: running solution.sh, then the tests")
    result.repaired, solution_output = tests_in_fresh_container(
        image, task, before_tests=task.solution_script()
    )
    targets = spec.fail_to_pass + spec.pass_to_pass
    problems = _expect(result.repaired, targets, True, "after solution.sh")
    if problems:
        problems[-1] += f"\nsolution.sh output (tail):\n{solution_output[-800:]}"
    result.problems += problems
    result.seconds = round(time.monotonic() - started, 1)
    return result


def move_to_retired(task: Task, dest_root: Path, why: str) -> Path:
    """Move a task out of its set into `dest_root/<id>/`, with a RETIRED.md dated today that says `why`."""
    dest_root.mkdir(parents=True, exist_ok=True)
    target = dest_root / task.id
    if target.exists():
        shutil.rmtree(target)
    shutil.move(str(task.path), str(target))
    (target / "RETIRED.md").write_text(f"# Retired {time.strftime('%Y-%m-%d')}\n\n{why}\n", encoding="utf-8")
    return target


def retire_task(task: Task, dest_root: Path, result: ValidationResult) -> Path:
    """Move a task that no longer shows its failures out of the set, into `dest_root/<id>/` with a note."""
    shown = ", ".join(result.broken_passes[:5])
    return move_to_retired(
        task,
        dest_root,
        f"{len(result.broken_passes)} of {len(task.spec.fail_to_pass)} FAIL_TO_PASS tests pass in the broken "
        f"image under the trusted harness (e.g. {shown}): what failed before was the test harness (its results "
        "file, `tee`, the shell around the test command), not the project.",
    )


# Words of a solution script that name no package, file or program (kept out of the leak terms).
_COMMON_WORDS = frozenset(
    [
        "apt-get",
        "install",
        "reinstall",
        "pip",
        "chmod",
        "chown",
        "ln",
        "rm",
        "mkdir",
        "touch",
        "set",
        "cat",
        "echo",
        "printf",
        "sed",
        "tee",
        "test",
        "cp",
        "mv",
        "ldconfig",
        "usr",
        "bin",
        "lib",
        "opt",
        "etc",
        "local",
        "share",
        "python3",
        "x86_64-linux-gnu",
        "dpkg",
        "options",
        "force",
        "confmiss",
        "no",
        "deps",
        "venv",
        "site",
        "packages",
        "dist",
        "true",
        "false",
        "then",
        "else",
        "fi",
        "if",
        "for",
        "do",
        "done",
        "euo",
        "pipefail",
        "force-confmiss",
        "sfn",
    ]
)


def leak_terms_of(solution: str) -> tuple[str, ...]:
    """Names a statement must not contain, read from a repair script: packages, files, programs it touches."""
    words = set()
    for line in solution.splitlines():
        if line.lstrip().startswith("#"):
            continue
        for token in re.findall(r"[A-Za-z0-9_.+-]{3,}", line.replace("/", " ")):
            name = token.split("==")[0].strip(".-")
            if len(name) >= 3 and name.lower() not in _COMMON_WORDS and not name.startswith("-"):
                words.add(name)
    return tuple(sorted(words))


def refresh_task(task: Task, result: ValidationResult) -> bool:
    """Rewrite a task whose broken image now fails only some FAIL_TO_PASS tests (the rest failed through the
    old harness): FAIL_TO_PASS becomes what really fails, the rest joins PASS_TO_PASS, and the statement is
    written again from the broken run. Only when the repair still resolves every test and the new statement
    leaks nothing; returns whether it was rewritten."""
    spec = task.spec
    if result.broken is None or result.repaired is None or not result.broken_passes:
        return False
    targets = spec.fail_to_pass + spec.pass_to_pass
    if any(result.repaired.status_of(t) is not Outcome.PASSED for t in targets):
        return False
    failing = [t for t in spec.fail_to_pass if t not in set(result.broken_passes)]
    if not failing or any(result.broken.status_of(t) is not Outcome.PASSED for t in spec.pass_to_pass):
        return False
    rng = random.Random(f"refresh:{spec.id}")
    instruction, _ = write_statement(spec.gold, spec.workdir, spec.test_command, [], result.broken, failing,
                                     len(targets), rng)  # fmt: skip
    terms = tuple(
        t for t in leak_terms_of(task.solution_script()) if t.lower() not in spec.test_command.lower()
    )
    if leaks(instruction, terms):
        return False
    task.spec = spec.model_copy(update={
        "instruction": instruction,
        "fail_to_pass": sorted(failing),
        "pass_to_pass": sorted(set(spec.pass_to_pass) | set(result.broken_passes)),
        "difficulty": None,  # calibrated again: the task changed
    })  # fmt: skip
    write_atomic(task.path / TASK_FILE, dump_yaml_model(task.spec))
    return True
