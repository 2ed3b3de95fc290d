"""`cligym tasks rebalance`: retire surplus sweeping tasks so the set's mix moves toward the audit's targets.

A sweeping task (see `audit.is_sweeping`) is the cheapest to replace and the least to learn from: its failures
say "everything is broken", whatever the project. Rebalancing retires them one at a time, always from the fault
family that is most over its share (each part of a composite counts), and among that family's tasks first the
composites (a sweeping part masks the others), then the gold with the most tasks, then the oldest. It never
retires a hand-written task or one named in `keep`, never takes a gold below the audit's floor of tasks, and
stops when the sweeping share is at most `max_sweeping` or the set would fall below `min_total` tasks: so with
`min_total` at the set's current size it retires nothing, and after a generation run it retires as many
sweeping tasks as partial ones arrived.

Retired tasks move to `retired_root/<id>/` with a `RETIRED.md` saying why; nothing is deleted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from cligym_env.inversion.audit import GOLD_FLOOR, is_sweeping
from cligym_env.inversion.validate import move_to_retired
from cligym_env.task import Task


@dataclass
class Plan:
    """Which tasks to retire, and the mix before and after."""

    retire: list[Task] = field(default_factory=list)
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)


def families_of(task: Task) -> list[str]:
    return task.summary.fault_family.split("+")


def mix(tasks: Iterable[Task]) -> dict:
    """Total, sweeping share and the largest family's share of a set (the figures rebalancing moves)."""
    tasks = list(tasks)
    total = len(tasks)
    families = Counter(f for t in tasks for f in set(families_of(t)))
    top, top_count = families.most_common(1)[0] if families else ("-", 0)
    sweeping = sum(is_sweeping(t) for t in tasks)
    return {
        "tasks": total,
        "sweeping": sweeping,
        "sweeping_share": round(sweeping / total, 4) if total else 0.0,
        "largest_family": top,
        "largest_family_share": round(top_count / total, 4) if total else 0.0,
    }


def plan_rebalance(
    tasks: list[Task], *, min_total: int, max_sweeping: float = 0.2, keep: Iterable[str] = ()
) -> Plan:
    """The tasks to retire (deterministic for a given set)."""
    keep = set(keep)
    alive = {t.id: t for t in tasks}
    per_gold = Counter(t.summary.gold for t in tasks)
    families = Counter(f for t in tasks for f in set(families_of(t)))
    plan = Plan(before=mix(tasks))

    def retirable(task: Task) -> bool:
        return (
            is_sweeping(task)
            and task.id not in keep
            and task.summary.inverter != "manual"
            and per_gold[task.summary.gold] > GOLD_FLOOR
        )

    candidates = sorted(
        (t for t in tasks if retirable(t)),
        key=lambda t: (
            "+" not in t.summary.fault_family,
            -per_gold[t.summary.gold],
            t.summary.created,
            t.id,
        ),
    )
    sweeping = sum(is_sweeping(t) for t in tasks)
    while len(alive) > min_total and sweeping > max_sweeping * len(alive):
        # The family most over its share decides; among its tasks, the order above.
        for family, _count in families.most_common():
            chosen = next(
                (t for t in candidates if t.id in alive and family in families_of(t) and retirable(t)), None
            )
            if chosen is not None:
                break
        else:
            break  # nothing left that may go
        del alive[chosen.id]
        plan.retire.append(chosen)
        per_gold[chosen.summary.gold] -= 1
        families.subtract(set(families_of(chosen)))
        sweeping -= 1
    plan.after = mix(alive.values())
    return plan


def retire(plan: Plan, retired_root: Path) -> list[Path]:
    """Move the planned tasks to `retired_root/<id>/`, each with a RETIRED.md."""
    moved = []
    for task in plan.retire:
        spec = task.spec
        why = (
            f"Surplus sweeping task: {len(spec.fail_to_pass)} of {len(spec.fail_to_pass) + len(spec.pass_to_pass)} "
            f"tests fail, from {spec.fault_family}. Retired by `cligym tasks rebalance` to bring the share of tasks "
            "that fail (nearly) every test and the share of the largest fault families down; the task itself is "
            "still valid."
        )
        moved.append(move_to_retired(task, retired_root, why))
    return moved
