"""The heuristic inverter: compose 1-3 faults drawn from the families, reproducibly from a seed."""

from __future__ import annotations

import random

from cligym_env.inversion.families import ALL_FAMILIES, FaultFamily
from cligym_env.inversion.pipeline import GoldWorkspace, Proposal

# How many faults a task combines: mostly one, sometimes two or three (harder, multi-step repairs).
FAULT_COUNT_WEIGHTS = {1: 0.65, 2: 0.27, 3: 0.08}


class HeuristicInverter:
    """Samples a family, then a target the family finds by probing the gold, then builds the fault."""

    name = "heuristic"
    model = None

    def __init__(self, families: tuple[FaultFamily, ...] = ALL_FAMILIES):
        self.families = families
        self._targets: dict[tuple[str, str], list[str]] = {}

    def _family_targets(self, ws: GoldWorkspace, family: FaultFamily) -> list[str]:
        key = (ws.gold.name, family.name)
        if key not in self._targets:
            applies = family.applies_to(ws.probe, ws.gold.spec.language)
            self._targets[key] = family.targets(ws.context) if applies else []
        return self._targets[key]

    def propose(
        self, ws: GoldWorkspace, rng: random.Random, made_titles: list[str] | None = None
    ) -> Proposal | None:
        """A proposal with 1-3 faults from distinct families, or None if this gold offers nothing."""
        usable = [f for f in self.families if self._family_targets(ws, f)]
        if not usable:
            return None
        count = rng.choices(list(FAULT_COUNT_WEIGHTS), weights=list(FAULT_COUNT_WEIGHTS.values()))[0]
        faults = []
        for family in rng.sample(usable, k=len(usable)):  # in random order, until `count` faults are made
            targets = self._family_targets(ws, family)
            for _ in range(3):  # a target a family cannot break here (e.g. no package owns it): try another
                fault = family.fault(ws.context, rng.choice(targets), rng)
                if fault is not None:
                    faults.append(fault)
                    break
            if len(faults) == count:
                break
        return Proposal.from_faults(faults, ws.gold.name) if faults else None
