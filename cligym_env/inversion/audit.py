"""`cligym tasks audit`: is a task set realistic and diverse? Figures read from the task files, beside targets.

The targets are issue #13's. Definitions:
- *partial*: the task keeps some tests passing (PASS_TO_PASS is not empty);
- *sweeping*: the failing tests are at least 90% of the task's tests,
  `len(FAIL_TO_PASS) / (len(FAIL_TO_PASS) + len(PASS_TO_PASS)) >= 0.9` (`SWEEPING`);
- a family's share: tasks it takes part in over all tasks (each part of a composite `a+b` counts);
- a category's share: tasks of the category over all tasks (the paper's 8, `task.CATEGORIES`);
- a gold's tasks: every gold known (`golds`, by default those under `tasks/gold/`) needs 10, so a gold without
  tasks fails;
- difficulty: every task calibrated, and each of easy / medium / hard at least 15% of the tasks.

Informative figures beside them: distinct repair shapes (`splits.repair_shape`), the share of tasks that the 19
most common repair commands repair on their own, tasks whose statement another task on the same gold has, and
how many held-out tasks of each split are repaired by commands found word for word in training repairs.

Example:
    >>> figures = audit_figures(list_tasks(Path("tasks/generated")))
    >>> [c["ok"] for c in target_checks(figures)]
"""

from __future__ import annotations

import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cligym_env.inversion.symptoms import plain_output
from cligym_env.splits import fault_split, repair_commands, repair_shape, split_of
from cligym_env.task import BROKEN_OUTPUT_FILE, CATEGORIES, Task

SWEEPING = 0.9
"""A task is sweeping when at least this share of its tests fail."""
TOP_COMMANDS = 19
CATEGORY_FLOOR = 0.03
GOLD_FLOOR = 10
DIFFICULTIES = ("easy", "medium", "hard")


def sizes(values: list[int]) -> dict:
    """Mean, median, min and max of a list of counts (zeros when it is empty)."""
    if not values:
        return {"mean": 0, "median": 0, "min": 0, "max": 0}
    return {
        "mean": round(statistics.mean(values), 1),
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }


@dataclass(frozen=True)
class Target:
    """One of issue #13's targets: the figure it reads, how to show it, and the test it must pass."""

    figure: str
    label: str
    goal: str
    ok: Callable[[dict], bool]
    percent: bool = False


TARGETS = (
    Target("tasks", "validated tasks", "≥ 2,000", lambda f: f["tasks"] >= 2000),
    Target("partial_share", "keep some tests passing", "≥ 50%", lambda f: f["partial_share"] >= 0.5, True),
    Target("sweeping_share", "sweeping (≥ 90% of tests fail)", "≤ 20%", lambda f: f["sweeping_share"] <= 0.2, True),
    Target("top_family_share", "largest family", "≤ 8%", lambda f: f["top_family_share"] <= 0.08, True),
    Target("categories_over_floor", "categories with ≥ 3% of tasks", "≥ 7 of 8",
           lambda f: f["categories_over_floor"] >= 7),
    Target("families", "families with tasks", "≥ 45", lambda f: f["families"] >= 45),
    Target("min_gold_tasks", "tasks of the smallest gold", "≥ 10", lambda f: f["min_gold_tasks"] >= GOLD_FLOOR),
    Target("calibrated_share", "calibrated", "100%", lambda f: f["calibrated_share"] >= 1.0, True),
    Target("min_difficulty_share", "rarest of easy / medium / hard", "≥ 15%",
           lambda f: f["min_difficulty_share"] >= 0.15, True),
)  # fmt: skip


def _share(count: int, total: int) -> float:
    return round(count / total, 4) if total else 0.0


def is_sweeping(task: Task) -> bool:
    """At least `SWEEPING` of the task's tests fail in the broken environment."""
    f2p, p2p = task.summary.fail_to_pass, task.summary.pass_to_pass
    return f2p / (f2p + p2p) >= SWEEPING


def _mix_figures(tasks: list[Task], golds: set[str]) -> dict:
    """The targets' figures: partial and sweeping shares, families, categories, golds, difficulty."""
    n = len(tasks)
    families = Counter(f for t in tasks for f in t.summary.families)
    top_family, top_count = families.most_common(1)[0] if families else ("-", 0)
    categories = Counter(t.summary.category for t in tasks)
    per_gold = Counter(t.summary.gold for t in tasks)
    per_gold.update({g: 0 for g in golds - set(per_gold)})
    difficulty = Counter(t.summary.difficulty for t in tasks if t.summary.difficulty)
    return {
        "tasks": n,
        "partial_share": _share(sum(t.summary.pass_to_pass > 0 for t in tasks), n),
        "sweeping_share": _share(sum(is_sweeping(t) for t in tasks), n),
        "top_family": top_family,
        "top_family_share": _share(top_count, n),
        "families": len(families),
        "categories": {c: _share(categories[c], n) for c in CATEGORIES},
        "categories_over_floor": sum(categories[c] / n >= CATEGORY_FLOOR for c in CATEGORIES) if n else 0,
        "golds": len(per_gold),
        "min_gold_tasks": min(per_gold.values(), default=0),
        "golds_under_floor": sorted(g for g, k in per_gold.items() if k < GOLD_FLOOR),
        "calibrated_share": _share(sum(difficulty.values()), n),
        "difficulty": {d: _share(difficulty[d], n) for d in DIFFICULTIES},
        "min_difficulty_share": min(_share(difficulty[d], n) for d in DIFFICULTIES),
    }


def _verbatim_share(test: list[Task], train: list[Task], commands: dict[str, list[str]]) -> float:
    """Share of `test` tasks whose every repair command is, word for word, a command of some `train` repair."""
    known = {c for t in train for c in commands[t.id]}
    return _share(sum(bool(commands[t.id]) and set(commands[t.id]) <= known for t in test), len(test))


def _repair_figures(tasks: list[Task], golds: set[str]) -> dict:
    """Repair shapes, the top commands' reach, and how much each split's test set is recall of its train set."""
    commands = {t.id: repair_commands(t.summary.solution) for t in tasks}
    top = {c for c, _ in Counter(c for cs in commands.values() for c in set(cs)).most_common(TOP_COMMANDS)}
    by_gold = {t.id: split_of(t.summary.gold, golds=golds) for t in tasks}
    gold_test = [t for t in tasks if by_gold[t.id] == "test"]
    gold_train = [t for t in tasks if by_gold[t.id] == "train"]
    faults = fault_split(tasks)
    ids = {t.id: t for t in tasks}
    return {
        "repair_shapes": len({repair_shape(c) for cs in commands.values() for c in cs}),
        "distinct_repair_commands": len({c for cs in commands.values() for c in cs}),
        "top_commands_share": _share(
            sum(bool(cs) and set(cs) <= top for cs in commands.values()), len(tasks)
        ),
        "gold_split": {
            "train": len(gold_train),
            "test": len(gold_test),
            "test_verbatim_share": _verbatim_share(gold_test, gold_train, commands),
        },
        "fault_split": {
            **faults.summary(),
            "test_verbatim_share": _verbatim_share(
                [ids[i] for i in faults.test], [ids[i] for i in faults.train], commands
            ),
        },
    }


def duplicate_statements(tasks: Iterable[Task]) -> list[list[Task]]:
    """Groups of tasks on one gold with the same instruction, each in id order (the first one may keep it)."""
    groups: dict[tuple[str, str], list[Task]] = defaultdict(list)
    for task in tasks:
        groups[(task.summary.gold, task.summary.statement)].append(task)
    return [sorted(g, key=lambda t: t.id) for g in groups.values() if len(g) > 1]


def audit_figures(tasks: list[Task], golds: Iterable[str] = ()) -> dict:
    """Every figure of the audit, as plain data; `golds` are golds that count even without tasks."""
    known = {t.summary.gold for t in tasks} | set(golds)
    duplicates = duplicate_statements(tasks)
    per_gold = Counter(t.summary.gold for g in duplicates for t in g[1:])
    return {
        **_mix_figures(tasks, known),
        **_repair_figures(tasks, known),
        "duplicate_statements": sum(per_gold.values()),
        "duplicate_statements_by_gold": dict(per_gold.most_common()),
        "fail_to_pass": sizes([t.summary.fail_to_pass for t in tasks]),
        "pass_to_pass": sizes([t.summary.pass_to_pass for t in tasks]),
    }


def _shown(value: float | int, percent: bool) -> str:
    return f"{value:.1%}" if percent else f"{value:,}"


def target_checks(figures: dict) -> list[dict]:
    """Each target with its figure, goal and whether the set meets it."""
    return [
        {"target": t.label, "figure": t.figure, "value": figures[t.figure],
         "shown": _shown(figures[t.figure], t.percent), "goal": t.goal, "ok": bool(t.ok(figures))}
        for t in TARGETS
    ]  # fmt: skip


def targets_markdown(figures: dict) -> list[str]:
    """The targets as a markdown table (for STATS.md and the audit's plain output)."""
    lines = ["| target | figure | goal | status |", "| --- | ---: | ---: | --- |"]
    for check in target_checks(figures):
        status = "PASS" if check["ok"] else "FAIL"
        lines.append(f"| {check['target']} | {check['shown']} | {check['goal']} | {status} |")
    return lines


def audit_markdown(figures: dict) -> str:
    """The whole audit as markdown: targets, then the informative figures."""
    gold, fault = figures["gold_split"], figures["fault_split"]
    dup = ", ".join(f"{g} {k}" for g, k in list(figures["duplicate_statements_by_gold"].items())[:8])
    cats = ", ".join(f"{c} {s:.1%}" for c, s in figures["categories"].items())
    diff = ", ".join(f"{d} {s:.1%}" for d, s in figures["difficulty"].items())
    f2p, p2p = figures["fail_to_pass"], figures["pass_to_pass"]
    lines = [
        f"# Task set audit ({figures['tasks']} tasks, {figures['golds']} golds, {figures['families']} families)",
        "",
        *targets_markdown(figures),
        "",
        f"- largest family: {figures['top_family']} ({figures['top_family_share']:.1%})",
        f"- categories: {cats}",
        f"- difficulty: {diff}",
        f"- golds under {GOLD_FLOOR} tasks: {', '.join(figures['golds_under_floor']) or 'none'}",
        f"- repair shapes: {figures['repair_shapes']} (from {figures['distinct_repair_commands']} distinct "
        f"commands); the top {TOP_COMMANDS} commands alone repair {figures['top_commands_share']:.1%} of tasks",
        f"- duplicate statements (tasks whose statement another task on its gold has): "
        f"{figures['duplicate_statements']}" + (f" ({dup})" if dup else ""),
        f"- gold split: {gold['train']} train / {gold['test']} test; {gold['test_verbatim_share']:.1%} of test "
        "tasks are repaired by commands found word for word in train repairs",
        f"- fault split: {fault['train']} train / {fault['test']} test / {fault['dropped']} dropped (would "
        f"straddle); held-out families: {', '.join(fault['held_out_families']) or 'none'}; "
        f"{fault['test_verbatim_share']:.1%} of test tasks repaired verbatim by train commands",
        f"- FAIL_TO_PASS mean {f2p['mean']}, median {f2p['median']}; "
        f"PASS_TO_PASS mean {p2p['mean']}, median {p2p['median']}",
    ]
    return "\n".join(lines) + "\n"


def sample_tasks(tasks: list[Task], n: int, seed: int) -> list[Task]:
    """`n` tasks drawn at random (by id order, so the same seed gives the same tasks)."""
    ordered = sorted(tasks, key=lambda t: t.id)
    return random.Random(seed).sample(ordered, min(n, len(ordered)))


def broken_output(task: Task, run: bool = False, progress=None) -> str | None:
    """The end of the broken run's output: run now in a fresh container of the task's broken image (`run`),
    else the excerpt stored in the task folder (`broken-output.txt`), else None."""
    if run:
        from cligym_env.inversion.validate import tests_in_fresh_container
        from cligym_env.task_image import build_task_image

        report, _ = tests_in_fresh_container(build_task_image(task, progress), task)
        return plain_output(report.output_tail)
    stored = task.path / BROKEN_OUTPUT_FILE
    return plain_output(stored.read_text(encoding="utf-8", errors="replace")) if stored.is_file() else None


def sample_view(task: Task, run: bool = False, progress=None) -> dict:
    """What a reviewer compares for one task: the statement (with hint), the broken run's output, the repair."""
    return {
        "id": task.id,
        "family": task.spec.fault_family,
        "fail_to_pass": len(task.spec.fail_to_pass),
        "pass_to_pass": len(task.spec.pass_to_pass),
        "statement": task.spec.prompt(),
        "broken_output": broken_output(task, run, progress),
        "solution": "\n".join(repair_commands(task.solution_script())),
    }
