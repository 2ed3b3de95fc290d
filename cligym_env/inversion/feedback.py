"""Execution feedback for the inverters: what earlier attempts on each gold did.

`cligym generate` keeps one `Feedback` per run, filled from its journal and from every attempt as it ends, so
a resumed run knows what the killed one learned. The heuristic inverter uses it three ways:

- a fault that was already tried on a gold (accepted, or rejected for a reason that would repeat: it flipped
  nothing, touched the source, did not break or repair, or only repeated an existing task's failing tests)
  is not proposed again;
- families are drawn by Thompson sampling over their acceptance on this gold, with the family's acceptance
  on all golds as the prior, so families that never flip anything here fade out and productive ones are
  used more, while every family keeps a chance;
- single faults that became tasks are the parts multi-fault tasks are composed from: each part is known to
  break tests on its own, so every part of the composite is needed for the repair; with how many tests each
  failed, so composites can prefer parts that do not fail everything.
"""

from __future__ import annotations

import dataclasses
import random
import threading
from collections import defaultdict, deque

from cligym_env.inversion.families.base import Fault

# Rejections that say something about the fault itself (they would happen again); the others (a Docker error,
# a duplicate, a statement that leaked) say nothing about whether the fault works.
DETERMINISTIC_REJECTIONS = frozenset(
    {
        "no-flip",
        "touched-source",
        "break-failed",
        "repair-failed",
        "build-failed",
        "flaky",
        "near-duplicate",
        "harness-only",
        "sweeping",
        "no-visible-failure",
    }
)
PRIOR_STRENGTH = 2.0
RECENT_SINGLES = 12
"""Single-fault attempts per gold that `single_rate` looks back on (early singles win more than late ones)."""


@dataclasses.dataclass
class _Rate:
    accepted: int = 0
    tried: int = 0


class Feedback:
    """Thread-safe record of attempts: per (gold, family) acceptance, tried signatures, validated faults."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rates: dict[tuple[str, str], _Rate] = defaultdict(_Rate)
        self._family: dict[str, _Rate] = defaultdict(_Rate)
        self._tried: set[tuple[str, str]] = set()
        self._validated: dict[str, list[tuple[Fault, int]]] = defaultdict(list)
        self._recent: dict[str, deque[bool]] = defaultdict(lambda: deque(maxlen=RECENT_SINGLES))

    def observe(self, entry: dict) -> None:
        """Take in one journal entry (see `Generator.attempt`)."""
        gold, status, reason = entry.get("gold"), entry.get("status"), entry.get("reason")
        family, signature = entry.get("family"), entry.get("signature")
        if not gold or not family or (status != "accepted" and reason not in DETERMINISTIC_REJECTIONS):
            return
        with self._lock:
            if signature:
                self._tried.add((gold, signature))
            if "+" not in family:  # composites say nothing about one family
                for rate in (self._rates[(gold, family)], self._family[family]):
                    rate.tried += 1
                    rate.accepted += status == "accepted"
                self._recent[gold].append(status == "accepted")
            fault = entry.get("fault")
            if status == "accepted" and fault:
                self._validated[gold].append((fault_from_dict(fault), int(entry.get("fail_to_pass") or 0)))

    def tried(self, gold: str, signature: str) -> bool:
        with self._lock:
            return (gold, signature) in self._tried

    def validated(self, gold: str) -> list[Fault]:
        """Single faults that became tasks on `gold`, in the order they were accepted."""
        with self._lock:
            return [fault for fault, _ in self._validated.get(gold, ())]

    def sweeping(self, gold: str) -> set[str]:
        """Signatures of validated faults on `gold` that fail (nearly) every test: as many as the most any fault
        failed there. Composites prefer to have at most one of these, so the other parts' failures show."""
        with self._lock:
            sizes = [(fault.signature, n) for fault, n in self._validated.get(gold, ())]
        most = max((n for _, n in sizes), default=0)
        return {signature for signature, n in sizes if most and n >= 0.99 * most}

    def single_rate(self, gold: str) -> float | None:
        """Acceptance of the last single-fault attempts on `gold` (Laplace-smoothed), None before 4 of them: once
        a gold's cheap single faults are used up most new ones flip nothing, while composites of validated parts
        still mostly become tasks."""
        with self._lock:
            recent = list(self._recent.get(gold, ()))
        return (sum(recent) + 1) / (len(recent) + 2) if len(recent) >= 4 else None

    def sample_rate(self, gold: str, family: str, rng: random.Random) -> float:
        """A draw from the posterior of the family's acceptance on `gold` (Beta; prior from all golds)."""
        with self._lock:
            overall, here = self._family.get(family, _Rate()), self._rates.get((gold, family), _Rate())
        prior_mean = (overall.accepted + 1) / (overall.tried + 2)
        alpha = PRIOR_STRENGTH * prior_mean + here.accepted
        beta = PRIOR_STRENGTH * (1 - prior_mean) + (here.tried - here.accepted)
        return rng.betavariate(alpha, beta)

    def counts(self, gold: str, family: str) -> tuple[int, int]:
        """(accepted, tried) for the family on `gold`."""
        with self._lock:
            rate = self._rates.get((gold, family), _Rate())
            return rate.accepted, rate.tried


def fault_to_dict(fault: Fault) -> dict:
    return dataclasses.asdict(fault)


def fault_from_dict(data: dict) -> Fault:
    fields = {f.name for f in dataclasses.fields(Fault)}
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in fields}
    return Fault(**values)
