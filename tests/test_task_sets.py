"""`cligym tasks stats` and `cligym tasks calibrate` on real task folders."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cligym_env.inversion.calibrate import difficulty_from
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
    """Two tasks without a difficulty, calibrated in parallel in a shuffled order; the third already has one."""
    todo = ["python-slugify-missing-dependency", "jinja2-missing-dependency"]
    for name in todo:
        data = yaml.safe_load((task_dir / name / "task.yaml").read_text())
        data.pop("difficulty", None)
        (task_dir / name / "task.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    data = yaml.safe_load((task_dir / "tabulate-wide-chars" / "task.yaml").read_text())
    data["difficulty"] = "hard"  # already calibrated: left alone
    (task_dir / "tabulate-wide-chars" / "task.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    result = subprocess.run(
        [sys.executable, "-m", "cligym_env.cli", "tasks", "calibrate", str(task_dir), "--workers", "2",
         "--shuffle", "1", "--json"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    results = {r["task"]: r for r in json.loads(result.stdout)}
    assert sorted(results) == sorted(todo)
    assert load_task(task_dir / "tabulate-wide-chars").spec.difficulty == "hard"
    for name in todo:
        assert results[name]["resolved"] and results[name]["difficulty"] in ("easy", "medium")
        assert load_task(task_dir / name).spec.difficulty == results[name]["difficulty"]


def test_near_duplicates_are_listed_removed_and_refused_by_generate(tmp_path: Path) -> None:
    from cligym_env.gold import load_gold
    from cligym_env.inversion.generate import Generator
    from cligym_env.inversion.heuristic import HeuristicInverter
    from cligym_env.inversion.stats import near_duplicate_groups
    from cligym_env.task import outcome_key

    original = ROOT / "tasks" / "generated" / "python-slugify-missing-dependency"
    shutil.copytree(original, tmp_path / original.name)
    twin = tmp_path / "python-slugify-twin"  # another fault of the same family, the same failing tests
    shutil.copytree(original, twin)
    data = yaml.safe_load((twin / "task.yaml").read_text())
    data["id"], data["signature"] = twin.name, "uninstalled-python-dependency:something-else"
    data["provenance"] |= {"inverter": "heuristic", "created": "2030-01-01T00:00:00+00:00"}
    (twin / "task.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    groups = near_duplicate_groups(list_tasks(tmp_path))
    assert [[t.id for t in g] for g in groups] == [[original.name, twin.name]]  # hand-written one kept
    result = subprocess.run(
        [sys.executable, "-m", "cligym_env.cli", "tasks", "dedup", str(tmp_path), "--remove", "--json"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [{"keep": original.name, "drop": [twin.name]}]
    assert [t.id for t in list_tasks(tmp_path)] == [original.name]
    # generate loads the outcome of every task in its output folder: the same outcome is refused.
    spec = load_task(tmp_path / original.name).spec
    generator = Generator([load_gold("python-slugify")], tmp_path, HeuristicInverter())
    try:
        reserved: list[str] = []
        claim = generator._claimer("python-slugify", reserved)
        assert not claim(outcome_key(spec.fault_family, spec.fail_to_pass))
        assert claim(outcome_key(spec.fault_family, spec.fail_to_pass[:1])) and len(reserved) == 1
        assert generator.total_accepted == 1
    finally:
        generator.close()
