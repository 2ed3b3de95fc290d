"""Which committed tasks the tests look at: the hand-written ones plus a fixed sample, never the whole set.

A test that loops over `tasks/generated` grows with the data, not with the code (the two round-trip tests
alone once took 33 minutes). The sample is the `n` tasks whose id hashes lowest: the same on every run and every
machine, and adding or retiring a task moves it by at most that one task. The whole set is covered by commands
run on demand (`cligym tasks check`, `cligym validate --sample`, `cligym tasks audit`), which a test runs on a
bounded sample.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "tasks" / "generated"
SAMPLE_SIZE = 24
GENERATED_ID = re.compile(r"-[0-9a-f]{10}$")


def task_folders(root: Path = GENERATED) -> list[Path]:
    return sorted(p for p in root.iterdir() if (p / "task.yaml").is_file()) if root.is_dir() else []


def hand_written(root: Path = GENERATED) -> list[Path]:
    """The tasks written by hand (provenance `inverter: manual`). Generated ids end in a 10-digit hash, so only
    the other folders' specs are read."""
    return [
        p
        for p in task_folders(root)
        if not GENERATED_ID.search(p.name) and "inverter: manual" in (p / "task.yaml").read_text()
    ]


def fixed_sample(n: int = SAMPLE_SIZE, root: Path = GENERATED) -> list[Path]:
    """The `n` generated task folders whose ids hash lowest, sorted by id."""
    ranked = sorted(task_folders(root), key=lambda p: hashlib.sha256(p.name.encode()).hexdigest())
    return sorted(ranked[:n])


def sampled_tasks(n: int = SAMPLE_SIZE, root: Path = GENERATED) -> list[Path]:
    """The hand-written tasks plus the fixed sample, without repeats."""
    return sorted({*hand_written(root), *fixed_sample(n, root)})
