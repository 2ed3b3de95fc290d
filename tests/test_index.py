"""The task index: summaries beside the task folders, checked against them, never trusted when stale."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from samples import fixed_sample

from cligym_env.errors import SpecError
from cligym_env.index import INDEX_FILE, STAMPS_FILE, summarize, task_index
from cligym_env.inversion.stats import task_stats
from cligym_env.task import list_tasks, load_task


@pytest.fixture
def root(tmp_path: Path) -> Path:
    for folder in fixed_sample(4):
        shutil.copytree(folder, tmp_path / folder.name)
    return tmp_path


def _messages(root: Path) -> tuple[list, list[str]]:
    said: list[str] = []
    return task_index(root, say=said.append), said


def test_listing_builds_the_index_and_reads_specs_only_when_used(root: Path) -> None:
    tasks = list_tasks(root)
    assert [t.id for t in tasks] == sorted(p.name for p in root.iterdir() if p.is_dir())
    lines = (root / INDEX_FILE).read_text().splitlines()
    assert len(lines) == 4 and all(json.loads(line)["v"] == 1 for line in lines)
    assert (root / STAMPS_FILE).is_file()
    assert all(t._spec is None for t in tasks)  # listed from the index: no task.yaml parsed yet
    for task in tasks:
        assert task.summary == summarize(load_task(task.path))
        assert task.summary.fail_to_pass == len(task.spec.fail_to_pass)  # the spec, loaded on use
    assert task_stats(list_tasks(root))["tasks"] == 4


def test_a_changed_added_or_removed_task_is_noticed_and_rebuilt(root: Path) -> None:
    task_index(root)
    first, second, third, fourth = sorted(p for p in root.iterdir() if p.is_dir())
    spec = first / "task.yaml"
    data = yaml.safe_load(spec.read_text())
    data["difficulty"] = "hard" if data.get("difficulty") != "hard" else "easy"
    spec.write_text(yaml.safe_dump(data, sort_keys=False))
    shutil.rmtree(second)
    shutil.copytree(third, root / "copy-of-third")
    (root / "copy-of-third" / "task.yaml").write_text(
        (third / "task.yaml").read_text().replace(f"id: {third.name}", "id: copy-of-third", 1)
    )
    entries, said = _messages(root)
    assert len(said) == 1 and "1 tasks added, 1 changed, 1 removed" in said[0], said
    by_id = {e.id: e for e in entries}
    assert by_id[first.name].difficulty == data["difficulty"] and second.name not in by_id
    assert "copy-of-third" in by_id
    # Rewritten: the next load finds nothing stale.
    assert _messages(root)[1] == []
    assert {json.loads(line)["id"] for line in (root / INDEX_FILE).read_text().splitlines()} == set(by_id)


def test_an_edit_is_caught_even_when_the_local_stamps_say_nothing_changed(root: Path) -> None:
    """The stamps only skip re-hashing; the digest in the index decides. A hand-edited index line (or one from
    another checkout) that does not match the folder is rebuilt."""
    task_index(root)
    lines = (root / INDEX_FILE).read_text().splitlines()
    forged = json.loads(lines[0])
    forged["gold"] = "not-its-gold"
    forged["digest"] = "0" * 64
    (root / INDEX_FILE).write_text("\n".join([json.dumps(forged), *lines[1:], "{torn line"]) + "\n")
    entries, said = _messages(root)
    assert said and "1 changed" in said[0] and "1 unreadable" in said[0]
    assert entries[0].gold == load_task(root / entries[0].id).spec.gold


def test_a_fresh_checkout_without_stamps_checks_every_digest(root: Path) -> None:
    task_index(root)
    (root / STAMPS_FILE).unlink()
    for folder in (p for p in root.iterdir() if p.is_dir()):  # a clone: new mtimes, same content
        for name in ("task.yaml", "Dockerfile", "solution.sh"):
            (folder / name).write_bytes((folder / name).read_bytes())
    entries, said = _messages(root)
    assert said == [] and len(entries) == 4  # the content is unchanged: the index is current


def test_a_task_whose_id_is_not_its_folder_name_is_refused(root: Path) -> None:
    folder = sorted(p for p in root.iterdir() if p.is_dir())[0]
    folder.rename(root / "renamed-task")
    with pytest.raises(SpecError, match="is not its folder's name"):
        task_index(root)
    assert not (root / INDEX_FILE).exists()  # nothing half-written


def test_tasks_check_reads_each_task_in_full_and_names_the_bad_ones(root: Path) -> None:
    import subprocess
    import sys

    command = [sys.executable, "-m", "cligym_env.cli", "tasks", "check", str(root), "--json"]
    good = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert good.returncode == 0 and json.loads(good.stdout) == {"checked": 4, "problems": {}}
    bad = sorted(p for p in root.iterdir() if p.is_dir())[1]
    (bad / "solution.sh").write_text("\n")
    out = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1
    assert list(json.loads(out.stdout)["problems"]) == [bad.name] and "solution.sh: empty" in out.stdout
