"""`cligym tasks restate`: write tasks' statements again, from what their broken run shows.

A task is restated from its files: the counts and the failing tests of `task.yaml`, and the end of the broken
run's output, read from `broken-output.txt` in the task folder, or (with `run`) obtained by running the tests in
a fresh container of the task's broken image and then kept in that file. The fix's words are read from
`solution.sh` and the fault signature (`task_leak_terms`) and kept out of the statement. The new statement is
one that no other task on the gold has. Each task is written atomically; the hint stays (it came from the fault).

Resumable: with `only_duplicates` a rerun finds only the duplicates still left; otherwise the ids done are
appended to `DIR/.restate/done.txt` as they are written and skipped by a rerun. A broken output, once obtained,
is never run again.
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cligym_env.inversion.audit import duplicate_statements
from cligym_env.inversion.statement import leaks, write_statement
from cligym_env.inversion.symptoms import plain_output, user_command
from cligym_env.inversion.validate import leak_terms_of
from cligym_env.specs import dump_yaml_model, write_atomic
from cligym_env.task import BROKEN_OUTPUT_FILE, TASK_FILE, Task
from cligym_env.testing import Outcome, TestReport

JOURNAL = Path(".restate") / "done.txt"


def task_leak_terms(task: Task) -> tuple[str, ...]:
    """Words that would give a task's fix away: what its repair touches, and its fault targets. Words of the
    project's name are left out (every statement names the project)."""
    targets = [part.split(":", 1)[1] for part in (task.spec.signature or "").split("+") if ":" in part]
    terms = set(leak_terms_of(task.solution_script() + "\n" + "\n".join(targets))) | set(targets)
    terms |= {t.replace("-", "_") for t in terms} | {
        t.replace("_", "-") for t in terms
    }  # module vs distribution
    return tuple(sorted(t for t in terms if len(t) >= 3 and t.lower() not in task.spec.gold.lower()))


def broken_report(task: Task, run: bool = False, progress: Callable | None = None) -> TestReport:
    """The broken run as a TestReport: outcomes from FAIL_TO_PASS / PASS_TO_PASS, the output from the stored
    file, or from a fresh run (`run`; then stored). Without either the output is empty."""
    stored = task.path / BROKEN_OUTPUT_FILE
    if stored.is_file():
        output = stored.read_text(encoding="utf-8", errors="replace")
    elif run:
        from cligym_env.inversion.validate import tests_in_fresh_container
        from cligym_env.task_image import build_task_image

        report, _ = tests_in_fresh_container(build_task_image(task, progress), task)
        output = plain_output(report.output_tail)
        write_atomic(stored, output)
    else:
        output = ""
    outcomes = {t: Outcome.FAILED for t in task.spec.fail_to_pass}
    outcomes.update({t: Outcome.PASSED for t in task.spec.pass_to_pass})
    return TestReport(outcomes=outcomes, output_tail=output)


# How the first template statements named the errors in the broken run's output ("The failures mention `X`.").
_MENTIONED = re.compile(r"The failures mention ((?:`[^`]+`(?: and )?)+)\.")


def restate_task(task: Task, report: TestReport, taken: set[str]) -> str | None:
    """Write a new statement for `task` (not in `taken`) into its task.yaml; None if every draw leaked."""
    spec = task.spec
    terms = task_leak_terms(task)
    rng = random.Random(f"restate:{spec.id}")
    n_total = len(spec.fail_to_pass) + len(spec.pass_to_pass)
    instruction, _ = write_statement(
        spec.gold, spec.workdir, spec.test_command, [], report, spec.fail_to_pass, n_total, rng,
        taken=taken, leak_terms=terms,
    )  # fmt: skip
    seen = _MENTIONED.search(spec.instruction)
    if seen and not report.output_tail:  # no output to quote: keep what the old statement saw in it
        first, sep, rest = instruction.partition("\n\n")
        instruction = f"{first} The output mentions {seen.group(1)}.{sep}{rest}"
    command = user_command(spec.test_command).lower()
    if leaks(instruction, tuple(t for t in terms if t.lower() not in command)):
        return None
    task.spec = spec.model_copy(update={"instruction": instruction})
    write_atomic(task.path / TASK_FILE, dump_yaml_model(task.spec))
    return instruction


def to_restate(tasks: list[Task], root: Path | None, only_duplicates: bool) -> list[Task]:
    """The tasks a run restates: all but the first of each duplicate group, or every task not yet done."""
    if only_duplicates:
        return [t for group in duplicate_statements(tasks) for t in group[1:]]
    journal = root / JOURNAL if root else None
    done = set(journal.read_text().split()) if journal and journal.is_file() else set()
    return [t for t in tasks if t.id not in done]


def restate_tasks(tasks: list[Task], root: Path | None = None, only_duplicates: bool = False, run: bool = False,
                  workers: int = 1, on_task: Callable[[Task, str], None] | None = None) -> dict:  # fmt: skip
    """Restate `tasks` (see the module docstring); `root` holds the journal. Returns counts by outcome.

    Broken outputs are fetched by `workers` threads (containers, with `run`); statements are written one at a
    time, each against the gold's statements of that moment. Ctrl-C cancels what has not started.
    """
    taken: dict[str, Counter] = defaultdict(Counter)
    for task in tasks:
        taken[task.spec.gold][task.spec.instruction.strip()] += 1
    todo = to_restate(tasks, root, only_duplicates)
    lock = threading.Lock()
    counts = Counter(restated=0, leaked=0, failed=0, skipped=len(tasks) - len(todo))
    journal = root / JOURNAL if root and not only_duplicates else None

    def one(task: Task) -> None:
        try:
            report = broken_report(task, run)
        except Exception as exc:  # a build or a container that failed: the task is left as it was
            outcome = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
        else:
            with lock:
                mine = taken[task.spec.gold]
                mine[task.spec.instruction.strip()] -= 1
                instruction = restate_task(task, report, {text for text, n in mine.items() if n > 0})
                mine[task.spec.instruction.strip()] += 1
                outcome = "leaked" if instruction is None else "restated"
                if journal:
                    journal.parent.mkdir(parents=True, exist_ok=True)
                    with journal.open("a") as handle:
                        handle.write(task.id + "\n")
        with lock:
            counts[outcome.split(":")[0]] += 1
        if on_task:
            on_task(task, outcome)

    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        for future in [pool.submit(one, t) for t in todo]:
            future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return dict(counts)
