"""Pass@k against hand-computed values, reports, and the export filters (cheating, duplicates) and formats."""

from __future__ import annotations

import json
from math import comb
from pathlib import Path

import datasets
import pytest

from agents.prompt import format_reply, initial_messages, submit_reply
from cligym_env.errors import CligymError
from cligym_env.evaluate import bootstrap_ci, evaluate_runs, pass_at_k
from cligym_env.export import ExportFilters, cheating_reasons, export_runs


def test_pass_at_k_matches_hand_computed_values():
    assert pass_at_k(1, 1, 1) == 1.0 and pass_at_k(1, 0, 1) == 0.0
    assert pass_at_k(5, 2, 1) == pytest.approx(0.4)
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)  # 1 - C(3,2)/C(5,2)
    assert pass_at_k(10, 3, 5) == pytest.approx(1 - 21 / 252)  # 1 - C(7,5)/C(10,5)
    assert pass_at_k(4, 3, 2) == 1.0  # fewer failures than k: some draw always succeeds
    for n, c, k in [(20, 7, 3), (13, 1, 10), (6, 0, 6)]:
        assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_bootstrap_is_seeded_and_brackets_the_mean():
    values = [1, 0, 0, 1, 1, 0, 1, 1]
    low, high = bootstrap_ci(values, 500, seed=3)
    assert (low, high) == bootstrap_ci(values, 500, seed=3) and low < 0.625 < high
    assert bootstrap_ci([1.0] * 4) == (1.0, 1.0)


def episode(
    task: str,
    sample: int,
    resolved: bool,
    commands: list[str],
    family="uninstalled-python-dependency",
    agent="llm",
):
    messages = initial_messages(f"fix {task}")
    for c in commands:
        messages += [
            {"role": "assistant", "content": format_reply("Try.", c)},
            {"role": "user", "content": "[exit code 0]\n"},
        ]
    messages.append({"role": "assistant", "content": submit_reply()})
    return {
        "task_id": task, "gold": task.split("-")[0], "fault_family": family, "category": "dependencies-runtime",
        "difficulty": "easy", "agent": agent, "model": "m", "seed": sample, "sample": sample, "messages": messages,
        "steps": [{"command": c, "output": "", "exit_code": 0, "seconds": 0.1, "timed_out": False} for c in commands],
        "reward": float(resolved), "resolved": resolved, "tests": {"resolved": resolved}, "n_steps": len(commands),
        "wall_seconds": 1.0, "stop": "submit", "error": None, "usage": {"prompt_tokens": 10},
    }  # fmt: skip


def write_run(run_dir: Path, episodes: list[dict], agent="llm") -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({"agent": agent, "split": "test", "model": "m"}))
    (run_dir / "trajectories.jsonl").write_text("".join(json.dumps(e) + "\n" for e in episodes))
    return run_dir


def test_eval_reports_pass_at_k_by_breakdown_and_compares_runs(tmp_path):
    a = write_run(tmp_path / "a", [episode("x-1", i, i < 2, ["ls"]) for i in range(5)]
                  + [episode("y-1", i, False, ["ls"], family="missing-executable") for i in range(5)])  # fmt: skip
    b = write_run(tmp_path / "b", [episode("x-1", 0, True, ["ls"])], agent="heuristic")
    result = evaluate_runs([a, b], ks=[1, 5], n_bootstrap=200)
    run_a, run_b = result["runs"]
    assert run_a["pass"]["pass@1"]["mean"] == pytest.approx(0.2)  # (0.4 + 0) / 2
    assert run_a["pass"]["pass@5"]["mean"] == pytest.approx(0.5)
    assert run_a["by"]["fault_family"]["missing-executable"]["pass@1"] == 0.0
    assert "pass@5" not in run_b["pass"]  # one sample: Pass@5 is undefined
    assert "| a | llm (m) |" in result["table"] and "| b | heuristic (m) |" in result["table"]
    report = (a / "report.md").read_text()
    assert "Pass@1 by fault family" in report and "| b |" in report
    assert (a / "pass_at_k.png").stat().st_size > 1000
    with pytest.raises(CligymError, match="no trajectories"):
        evaluate_runs([tmp_path / "missing"])


def test_cheating_detector():
    assert cheating_reasons(["cat /solution.sh"]) == ["reads solution.sh"]
    assert cheating_reasons(["cd /testbed && git log -p"]) == ["uses git history"]
    assert cheating_reasons(["grep -n slug tests/test_main.py"]) == ["reads the test files"]
    assert cheating_reasons(["tail -n 50 /var/log/dpkg.log"]) == ["reads package-manager logs"]
    assert cheating_reasons(["docker build -t x ."]) == ["re-runs the task's build"]
    clean = [
        "python -m pytest -q tests",
        "pip install wcwidth",
        "dpkg -S /usr/bin/less",
        "ls -l /opt/venv/bin",
    ]
    assert cheating_reasons(clean) == []


def test_export_filters_and_loads_both_ways(tmp_path):
    clean = episode(
        "t-1", 0, True, ["python -m pytest -q tests", "pip install wcwidth", "python -m pytest -q tests"]
    )
    episodes = [
        clean,
        episode("t-1", 1, True, ["cat /var/log/apt/history.log", "pip install wcwidth"]),  # cheating
        episode(
            "t-1", 2, True, ["python  -m pytest -q tests", "pip install wcwidth", "python -m pytest -q tests"]
        ),  # exact dup
        episode(
            "t-1",
            3,
            True,
            ["python -m pytest -q tests", "pip install wcwidth", "python -m pytest -q tests", "true"],
        ),  # near dup
        episode("t-1", 4, False, ["ls"]),  # unresolved
        episode("t-1", 5, True, []),  # too short
        episode(
            "u-1", 0, True, ["python -m pytest -q tests", "pip install wcwidth", "python -m pytest -q tests"]
        ),
        episode("u-1", 1, True, ["ls"]) | {"error": "endpoint down"},
    ]
    run = write_run(tmp_path / "run", episodes)
    result = export_runs([run], tmp_path / "data", ExportFilters(near_duplicate=0.8))
    assert result["kept"] == 2 and result["total"] == 8
    assert result["dropped"] == {"cheating": 1, "exact duplicate": 1, "near duplicate": 1, "unresolved": 1,
                                 "too few steps": 1, "policy error": 1}  # fmt: skip
    on_disk = datasets.load_from_disk(str(tmp_path / "data"))
    from_json = datasets.load_dataset("json", data_files=str(tmp_path / "data" / "data.jsonl"), split="train")
    assert on_disk.num_rows == from_json.num_rows == 2
    assert sorted(on_disk["task_id"]) == ["t-1", "u-1"] and on_disk[0]["messages"][0]["role"] == "system"
    assert [m["role"] for m in on_disk[0]["messages"]][-2:] == ["user", "assistant"]
    card = (tmp_path / "data" / "README.md").read_text()
    assert "| dropped: cheating | 1 |" in card and "| **kept** | **2** |" in card
