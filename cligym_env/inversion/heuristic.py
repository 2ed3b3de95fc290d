"""The heuristic inverter: faults drawn from the families, steered by execution feedback, reproducible from a seed.

A proposal is either one fault, from a family drawn by Thompson sampling over what earlier attempts on this
gold accepted (see `feedback.py`; each draw is divided by 1 + the tasks the family already made on the gold, so
a family that always works does not crowd out the others), or a composite of 2-3 faults that each already
became a task on this gold on their own, from distinct families, none of them failing every test alone:
every part breaks tests by itself, so the repair needs all of them, and the task keeps tests passing.
Composites are at least `composite_share` of the proposals, more on a gold whose recent single faults flipped
nothing (its cheap wins are used up).
Random multi-fault proposals were tried first and almost never survived (one part masks the others, or a part
breaks nothing and is dropped as a decoy), which is why composites are built from validated parts.
"""

from __future__ import annotations

import random

from cligym_env.inversion.families import ALL_FAMILIES, FaultFamily
from cligym_env.inversion.families.base import Fault
from cligym_env.inversion.feedback import Feedback
from cligym_env.inversion.pipeline import GoldWorkspace, Proposal

COMPOSITE_SHARE = 0.4
"""Least share of proposals that are composites, on a gold with validated faults from two families or more."""
MAX_COMPOSITE_SHARE = 0.85
"""Most share of composites: the share follows 1 - the gold's recent single-fault acceptance between the two."""
COMPOSITE_SIZES = {2: 0.75, 3: 0.25}
COMPOSITE_TRIES = 10
"""Random draws of parts for a composite (none of them a fault that fails every test on its own)."""
TARGETS_PER_FAMILY = 3
"""Targets tried per family before the next family (a family may be unable to break a target here)."""
# Faults that take the interpreter or /tmp away go last in a composite: the other parts' break commands may
# need them.
LAST = ("interpreter-not-executable", "broken-interpreter-symlink", "broken-tmp-directory")


class HeuristicInverter:
    """Samples a family, then a target the family finds by probing the gold, then builds the fault."""

    name = "heuristic"
    model = None

    def __init__(
        self, families: tuple[FaultFamily, ...] = ALL_FAMILIES, composite_share: float = COMPOSITE_SHARE
    ):
        self.families = families
        self._family_names = {f.name for f in families}
        self.composite_share = composite_share
        self._targets: dict[tuple[str, str], list[str]] = {}

    def _family_targets(self, ws: GoldWorkspace, family: FaultFamily) -> list[str]:
        key = (ws.gold.name, family.name)
        if key not in self._targets:
            applies = family.applies_to(ws.probe, ws.gold.spec.language)
            self._targets[key] = family.targets(ws.context) if applies else []
        return self._targets[key]

    def propose(
        self,
        ws: GoldWorkspace,
        rng: random.Random,
        made_titles: list[str] | None = None,
        feedback: Feedback | None = None,
    ) -> Proposal | None:
        """A proposal not tried on this gold before, or None if this gold has nothing new to offer."""
        feedback = feedback or Feedback()
        if rng.random() < self.share(ws.gold.name, feedback):
            proposal = self._composite(ws.gold.name, rng, feedback)
            if proposal is not None:
                return proposal
        return self._single(ws, rng, feedback)

    def share(self, gold: str, feedback: Feedback) -> float:
        """Chance that the next proposal on `gold` is a composite: the configured share, raised towards
        `MAX_COMPOSITE_SHARE` as single faults stop flipping tests there (a share of 0 or 1 is kept as given)."""
        rate = feedback.single_rate(gold)
        if rate is None or self.composite_share in (0.0, 1.0):
            return self.composite_share
        return max(self.composite_share, min(MAX_COMPOSITE_SHARE, 1.0 - rate))

    def _single(self, ws: GoldWorkspace, rng: random.Random, feedback: Feedback) -> Proposal | None:
        gold = ws.gold.name
        usable = [f for f in self.families if self._family_targets(ws, f)]
        # Thompson draw, divided by 1 + the tasks the family already made here: diversity over the easiest win.
        draws = {
            f.name: feedback.sample_rate(gold, f.name, rng) / (1 + feedback.counts(gold, f.name)[0])
            for f in usable
        }
        for family in sorted(usable, key=lambda f: draws[f.name], reverse=True):
            fresh = [
                t for t in self._family_targets(ws, family) if not feedback.tried(gold, f"{family.name}:{t}")
            ]
            for target in rng.sample(fresh, k=min(TARGETS_PER_FAMILY, len(fresh))):
                fault = family.fault(ws.context, target, rng)
                if fault is not None and not feedback.tried(gold, fault.signature):
                    return Proposal.from_faults([fault], gold)
        return None

    def _composite(self, gold: str, rng: random.Random, feedback: Feedback) -> Proposal | None:
        by_family: dict[str, list[Fault]] = {}
        for fault in feedback.validated(gold):
            if fault.family in self._family_names:
                by_family.setdefault(fault.family, []).append(fault)
        if len(by_family) < 2:
            return None
        sweeping = feedback.sweeping(gold)
        for _ in range(COMPOSITE_TRIES):
            size = rng.choices(list(COMPOSITE_SIZES), weights=list(COMPOSITE_SIZES.values()))[0]
            families = rng.sample(sorted(by_family), k=min(size, len(by_family)))
            parts = sorted((rng.choice(by_family[f]) for f in families), key=lambda f: f.family in LAST)
            # No part that fails every test: each part's failures stay visible and the task keeps tests
            # passing (sweeping faults stay a minority, and never the only signal).
            if any(p.signature in sweeping for p in parts):
                continue
            proposal = Proposal.from_faults(parts, gold, composed=True)
            if not feedback.tried(gold, proposal.signature):
                return proposal
        return None
