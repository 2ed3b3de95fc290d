"""Train / test splits by gold project, so Pass@1 is measured on projects never seen in training.

A gold goes to `test` when a stable hash of its name (SHA-256 of `"<salt>:<name>"`, read as a fraction of
[0, 1)) falls below `test_fraction`; the split of a gold never depends on which other golds exist, so adding
golds never moves old ones. With few golds the threshold alone can leave a split empty; then, and only then,
`split_of(..., golds=[...])` moves the gold with the smallest hash into `test` (or the largest into `train`),
so that both splits are non-empty whenever there are two golds or more. Once the rule alone fills both, the
fallback is never used again.

Example:
    >>> split_of("markupsafe")
    'test'
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Literal

Split = Literal["train", "test"]
SPLITS = ("train", "test", "all")
DEFAULT_SALT = "cligym-v1"
DEFAULT_TEST_FRACTION = 0.3


def gold_fraction(gold_name: str, salt: str = DEFAULT_SALT) -> float:
    """The gold's position in [0, 1): the first 8 bytes of SHA-256("<salt>:<name>") over 2**64."""
    digest = hashlib.sha256(f"{salt}:{gold_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(
    gold_name: str,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    salt: str = DEFAULT_SALT,
    golds: Iterable[str] | None = None,
) -> Split:
    """`"test"` or `"train"` for a gold; pass every known gold as `golds` to keep both splits non-empty."""
    if not 0.0 <= test_fraction <= 1.0:
        raise ValueError(f"test_fraction must be in [0, 1], not {test_fraction}")
    position = gold_fraction(gold_name, salt)
    split: Split = "test" if position < test_fraction else "train"
    known = sorted(set(golds or ()) | {gold_name}, key=lambda g: gold_fraction(g, salt))
    if len(known) >= 2 and 0.0 < test_fraction < 1.0:
        in_test = [g for g in known if gold_fraction(g, salt) < test_fraction]
        if not in_test and gold_name == known[0]:
            return "test"
        if len(in_test) == len(known) and gold_name == known[-1]:
            return "train"
    return split


def splits_of(
    golds: Iterable[str], test_fraction: float = DEFAULT_TEST_FRACTION, salt: str = DEFAULT_SALT
) -> dict[str, Split]:
    """The split of every gold in `golds`, with the non-empty fallback applied."""
    names = sorted(set(golds))
    return {g: split_of(g, test_fraction, salt, golds=names) for g in names}
