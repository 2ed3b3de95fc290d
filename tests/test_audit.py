"""`cligym tasks audit`, `cligym tasks restate` and STATS.md's targets, on small task sets built by hand."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from cligym_env.inversion.audit import audit_figures, duplicate_statements, target_checks
from cligym_env.inversion.restate import restate_tasks
from cligym_env.inversion.stats import stats_markdown, task_stats
from cligym_env.splits import split_of
from cligym_env.task import BROKEN_OUTPUT_FILE, Provenance, TaskSpec, dockerfile_text, list_tasks, write_task

ROOT = Path(__file__).resolve().parent.parent
SAME = "The tests of this project fail. Please repair the environment."
# id, gold, family, category, FAIL_TO_PASS, PASS_TO_PASS, difficulty, repair, instruction
ROWS = [
    ("a1", "alpha", "broken-tmp", "file-system", 9, 1, "easy", "rm -rf /tmp && mkdir -m 1777 /tmp", SAME),
    ("a2", "alpha", "broken-tmp+missing-locale", "file-system", 5, 0, "hard",
     "rm -rf /tmp && mkdir -m 1777 /tmp\napt-get install --reinstall -y locales", SAME),
    ("a3", "alpha", "missing-locale", "other", 8, 2, "medium", "apt-get install --reinstall -y locales", "A3."),
    ("a4", "alpha", "old-dependency", "dependencies-runtime", 2, 8, None, "pip install attrs==23.2.0", "A4."),
    ("b1", "beta", "old-dependency", "dependencies-runtime", 1, 9, "easy", "pip install six==1.16.0", SAME),
    ("b2", "beta", "hosts-file", "network-security", 3, 3, "medium",
     "printf '127.0.0.1 localhost\\n' > /etc/hosts", "B2."),
]  # fmt: skip


def _build(root: Path, rows=ROWS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for task_id, gold, family, category, f2p, p2p, difficulty, repair, instruction in rows:
        spec = TaskSpec(
            id=task_id, gold=gold, title=task_id, instruction=instruction, fault_family=family, category=category,
            difficulty=difficulty, fail_to_pass=[f"tests/test_{task_id}.py::test_f{i}" for i in range(f2p)],
            pass_to_pass=[f"tests/test_keep.py::test_p{i}" for i in range(p2p)], test_command="python -m pytest",
            provenance=Provenance(inverter="manual"),
        )  # fmt: skip
        write_task(root, spec, dockerfile_text(["rm -rf /tmp"]), f"#!/usr/bin/env bash\nset -e\n{repair}\n")
    return root


def test_audit_figures_on_a_known_set(tmp_path: Path) -> None:
    tasks = list_tasks(_build(tmp_path / "set"))
    figures = audit_figures(tasks, golds=["gamma"])
    assert figures["tasks"] == 6
    assert figures["partial_share"] == round(5 / 6, 4)  # a2 fails every test
    assert figures["sweeping_share"] == round(2 / 6, 4)  # a1 (9 of 10) and a2 (5 of 5)
    assert figures["families"] == 4  # broken-tmp, missing-locale, old-dependency, hosts-file
    assert figures["top_family_share"] == round(2 / 6, 4)  # each part of a composite counts
    assert (
        figures["categories"]["file-system"] == round(2 / 6, 4) and figures["categories"]["concurrency"] == 0
    )
    assert figures["categories_over_floor"] == 4
    assert figures["golds"] == 3 and figures["min_gold_tasks"] == 0 and figures["golds_under_floor"] == [
        "alpha", "beta", "gamma"]  # fmt: skip
    assert figures["calibrated_share"] == round(5 / 6, 4) and figures["min_difficulty_share"] == round(
        1 / 6, 4
    )
    # rm -rf <path>, mkdir -m <num> <path>, apt-get install --reinstall -y <pkg>, pip install <pkg>==<ver>, printf…
    assert figures["repair_shapes"] == 5 and figures["distinct_repair_commands"] == 6
    assert figures["top_commands_share"] == 1.0  # fewer than 19 commands: they repair everything
    assert figures["duplicate_statements"] == 1 and figures["duplicate_statements_by_gold"] == {"alpha": 1}
    assert [[t.id for t in g] for g in duplicate_statements(tasks)] == [["a1", "a2"]]
    assert figures["fail_to_pass"]["median"] == 4.0 and figures["pass_to_pass"]["max"] == 9
    test_gold = [
        g for g in ("alpha", "beta", "gamma") if split_of(g, golds=["alpha", "beta", "gamma"]) == "test"
    ]
    assert figures["gold_split"]["test"] == sum(r[1] in test_gold for r in ROWS)
    fault = figures["fault_split"]
    assert fault["train"] + fault["test"] + fault["dropped"] == 6 and fault["test_verbatim_share"] == 0.0
    checks = {c["figure"]: c["ok"] for c in target_checks(figures)}
    assert checks == {"tasks": False, "partial_share": True, "sweeping_share": False, "top_family_share": False,
                      "categories_over_floor": False, "families": False, "min_gold_tasks": False,
                      "calibrated_share": False, "min_difficulty_share": True}  # fmt: skip


def test_stats_markdown_shows_the_targets(tmp_path: Path) -> None:
    stats = task_stats(list_tasks(_build(tmp_path / "set")))
    text = stats_markdown(stats, "cligym tasks stats")
    assert "| keep some tests passing | 83.3% | ≥ 50% | PASS |" in text
    assert "| validated tasks | 6 | ≥ 2,000 | FAIL |" in text


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cligym_env.cli", "tasks", *args], capture_output=True,
                          text=True, cwd=ROOT)  # fmt: skip


def test_audit_cli_json_strict_and_sample(tmp_path: Path) -> None:
    root = _build(tmp_path / "set")
    (root / "b2" / BROKEN_OUTPUT_FILE).write_text("E   OSError: cannot resolve localhost\n")
    result = _cli("audit", str(root), "--json", "--no-all-golds", "--sample", "6")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["figures"]["tasks"] == 6 and len(data["targets"]) == 9 and len(data["sample"]) == 6
    shown = {view["id"]: view for view in data["sample"]}
    assert shown["b2"]["broken_output"].startswith("E   OSError") and shown["a1"]["broken_output"] is None
    assert shown["a2"]["solution"].splitlines()[0] == "rm -rf /tmp"
    strict = _cli("audit", str(root), "--strict", "--no-all-golds", "--sample", "1", "--seed", "3")
    assert strict.returncode == 1 and "| validated tasks | 6 | ≥ 2,000 | FAIL |" in strict.stdout
    assert "statement" in strict.stderr and "repair" in strict.stderr  # the sample's side-by-side table


def test_restate_only_duplicates_is_atomic_and_resumable(tmp_path: Path) -> None:
    root = _build(tmp_path / "set")
    (root / "a2" / BROKEN_OUTPUT_FILE).write_text(
        "E   FileNotFoundError: No usable temporary directory found\n"
    )
    result = _cli("restate", str(root), "--only-duplicates", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["restated"] == 1  # a2 takes a new statement, a1 keeps SAME
    tasks = {t.id: t for t in list_tasks(root)}
    assert tasks["a1"].spec.instruction == SAME and tasks["b1"].spec.instruction == SAME  # another gold
    new = tasks["a2"].spec.instruction
    assert re.search(r"\b5\b", new) and duplicate_statements(tasks.values()) == []
    assert not list(root.glob(".*.partial")) and not list(root.rglob("*.tmp*"))
    again = _cli("restate", str(root), "--only-duplicates", "--json")
    assert json.loads(again.stdout)["restated"] == 0


def test_restate_everything_resumes_from_its_journal(tmp_path: Path) -> None:
    root = _build(tmp_path / "set")
    first = restate_tasks(list_tasks(root), root)
    assert first["restated"] == 6 and first["skipped"] == 0
    statements = {t.id: t.spec.instruction for t in list_tasks(root)}
    assert len({(t.spec.gold, t.spec.instruction) for t in list_tasks(root)}) == 6
    assert all(s != SAME for s in statements.values())
    second = restate_tasks(list_tasks(root), root)
    assert second["restated"] == 0 and second["skipped"] == 6
    assert {t.id: t.spec.instruction for t in list_tasks(root)} == statements
