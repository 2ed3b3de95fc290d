"""`cligym tasks stats`: what a task set holds, by gold, family, category and difficulty."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from cligym_env.inversion.audit import audit_figures, sizes, target_checks, targets_markdown
from cligym_env.task import Task, outcome_key


def task_stats(tasks: list[Task], golds: Iterable[str] = ()) -> dict:
    """Counts and F2P/P2P sizes of a task set (plain data, for --json and the markdown table), and the audit's
    figures and targets (`golds`: golds that count even without tasks)."""
    specs = [t.summary for t in tasks]  # from the index: no test lists read
    figures = audit_figures(tasks, golds)
    faults = Counter(len((s.signature or "x").split("+")) for s in specs)
    return {
        "tasks": len(specs),
        "golds": len({s.gold for s in specs}),
        "families": len({f for s in specs for f in s.families}),
        "by_gold": dict(Counter(s.gold for s in specs).most_common()),
        "by_family": dict(Counter(f for s in specs for f in s.fault_family.split("+")).most_common()),
        "by_category": dict(Counter(s.category for s in specs).most_common()),
        "by_difficulty": dict(Counter(s.difficulty or "uncalibrated" for s in specs).most_common()),
        "by_fault_count": {str(k): v for k, v in sorted(faults.items())},
        "by_inverter": dict(Counter(s.inverter for s in specs).most_common()),
        "fail_to_pass": sizes([s.fail_to_pass for s in specs]),
        "pass_to_pass": sizes([s.pass_to_pass for s in specs]),
        "dockerfile_lines": sizes([s.break_lines for s in specs]),
        "audit": figures,
        "targets": target_checks(figures),
    }


def stats_markdown(stats: dict, command: str) -> str:
    """The stats as markdown tables (committed beside the dataset)."""
    lines = [
        "# Task set statistics",
        "",
        f"Made by `{command}`. {stats['tasks']} tasks from {stats['golds']} gold environments and "
        f"{stats['families']} fault families.",
        "",
        "## Targets (issue #13, checked by `cligym tasks audit`)",
        "",
        *targets_markdown(stats["audit"]),
        "",
        "## Figures",
        "",
        "| size | mean | median | min | max |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for key in ("fail_to_pass", "pass_to_pass", "dockerfile_lines"):
        s = stats[key]
        lines.append(f"| {key} | {s['mean']} | {s['median']} | {s['min']} | {s['max']} |")
    for key in ("by_category", "by_difficulty", "by_fault_count", "by_inverter", "by_family", "by_gold"):
        lines += ["", f"| {key.removeprefix('by_').replace('_', ' ')} | tasks |", "| --- | ---: |"]
        lines += [f"| {name} | {count} |" for name, count in stats[key].items()]
    return "\n".join(lines) + "\n"


def near_duplicate_groups(tasks: list[Task]) -> list[list[Task]]:
    """Tasks on the same gold whose fault family and FAIL_TO_PASS set are the same (e.g. /tmp made a file, and
    /tmp made a dangling link), each group in the order to keep them: hand-written first, then oldest."""
    groups: dict[tuple[str, str], list[Task]] = defaultdict(list)
    for task in tasks:
        groups[(task.spec.gold, outcome_key(task.spec.fault_family, task.spec.fail_to_pass))].append(task)

    def order(task: Task) -> tuple:
        return task.spec.provenance.inverter != "manual", task.spec.provenance.created, task.id

    return [sorted(group, key=order) for group in groups.values() if len(group) > 1]
