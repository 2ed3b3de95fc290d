"""`cligym tasks stats` and `cligym tasks calibrate` on real task folders."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cligym_env.inversion.calibrate import calibrate_task, difficulty_from
from cligym_env.inversion.stats import task_stats
from cligym_env.task import list_tasks, load_task

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ("python-slugify-missing-dependency", "tabulate-wide-chars", "jinja2-missing-dependency")


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    for name in SEEDS:
        shutil.copytree(ROOT / "tasks" / "generated" / name, tmp_path / name)
    return tmp_path


def test_stats_counts_and_sizes(task_dir: Path) -> None:
    stats = task_stats(list_tasks(task_dir))
    assert stats["tasks"] == 3 and stats["golds"] == 3
    assert stats["by_family"] == {"uninstalled-python-dependency": 3}
    f2p = sorted(len(load_task(task_dir / n).spec.fail_to_pass) for n in SEEDS)
    assert (stats["fail_to_pass"]["min"], stats["fail_to_pass"]["max"]) == (f2p[0], f2p[-1])


def test_stats_cli_writes_markdown_and_json(task_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "STATS.md"
    result = subprocess.run(
        [sys.executable, "-m", "cligym_env.cli", "tasks", "stats", str(task_dir), "--write", str(out), "--json"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tasks"] == 3
    assert "| uninstalled-python-dependency | 3 |" in out.read_text()


def test_difficulty_thresholds() -> None:
    assert [difficulty_from(True, 3), difficulty_from(True, 9), difficulty_from(False, 2)] == [
        "easy",
        "medium",
        "hard",
    ]


@pytest.mark.slow
def test_calibrate_writes_the_difficulty(task_dir: Path) -> None:
    path = task_dir / "python-slugify-missing-dependency"
    data = yaml.safe_load((path / "task.yaml").read_text())
    data.pop("difficulty", None)
    (path / "task.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    result = calibrate_task(load_task(path))
    assert result["resolved"] and result["difficulty"] in ("easy", "medium")
    assert load_task(path).spec.difficulty == result["difficulty"]
