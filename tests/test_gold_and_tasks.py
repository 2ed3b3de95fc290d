"""Gold verify and task validation on real projects, in real containers."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cligym_env.gold import load_gold
from cligym_env.gold_image import verify_gold
from cligym_env.inversion.validate import validate_task
from cligym_env.task import load_task

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_verify_a_gold_outside_the_gold_folder(tmp_path: Path) -> None:
    folder = tmp_path / "h11"
    shutil.copytree(ROOT / "tasks" / "gold" / "h11", folder, ignore=shutil.ignore_patterns("verified.json"))
    record = verify_gold(load_gold(folder))
    assert record.n_tests >= 70 and len(record.passing) >= 70
    assert all("::" in t for t in record.passing)
    saved = json.loads((folder / "verified.json").read_text())
    assert saved["passing"] == record.passing and saved["image"].startswith("cligym/gold-h11:")


def test_validate_accepts_a_real_task() -> None:
    result = validate_task(load_task(ROOT / "tasks" / "generated" / "python-slugify-missing-dependency"))
    assert result.ok, result.problems
    assert result.broken is not None and result.repaired is not None
    assert len(result.repaired.passed) >= len(result.broken.passed)


def test_validate_rejects_a_task_whose_failing_tests_pass(tmp_path: Path) -> None:
    source = ROOT / "tasks" / "generated" / "tabulate-wide-chars"
    task_dir = tmp_path / source.name
    shutil.copytree(source, task_dir)
    dockerfile = task_dir / "Dockerfile"  # drop the breaking RUN: the "broken" image is the healthy gold
    text = dockerfile.read_text()
    dockerfile.write_text(text[: text.index("\nRUN ")] + "\n")
    result = validate_task(load_task(task_dir))
    assert not result.ok
    assert any("FAIL_TO_PASS" in p and "do not fail" in p for p in result.problems)
