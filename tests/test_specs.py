"""Gold and task specs: every committed spec loads; malformed ones give one error naming file and field."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml
from samples import sampled_tasks

from cligym_env import specs
from cligym_env.errors import SpecError
from cligym_env.gold import GoldSpec, default_gold_root, list_golds, load_gold
from cligym_env.task import Task, dockerfile_text, list_tasks, load_task, single_run_command

ROOT = Path(__file__).resolve().parent.parent
GOLD_DIRS = sorted(p for p in (ROOT / "tasks" / "gold").iterdir() if (p / "gold.yaml").is_file())
TASK_DIRS = sampled_tasks()  # the whole set: `cligym tasks stats tasks/generated` loads and checks every spec


@pytest.mark.parametrize("path", GOLD_DIRS, ids=lambda p: p.name)
def test_every_gold_spec_is_valid(path: Path) -> None:
    gold = load_gold(path)
    assert gold.name == path.name
    text = gold.dockerfile.read_text()
    assert "FROM ${CLIGYM_BASE}" in text, "a gold Dockerfile starts from the base image build argument"
    assert gold.spec.source.pin[1] == gold.spec.version
    assert gold.spec.results.path in gold.spec.test_command


def test_at_least_five_golds_listed() -> None:
    assert len(list_golds(default_gold_root())) >= 5


@pytest.mark.parametrize("path", TASK_DIRS, ids=lambda p: p.name)
def test_every_task_spec_is_valid(path: Path) -> None:
    task = load_task(path)
    assert task.id == path.name
    assert task.spec.fail_to_pass and not set(task.spec.fail_to_pass) & set(task.spec.pass_to_pass)
    assert task.solution.is_file() and task.solution_script().strip()
    assert "FROM ${CLIGYM_GOLD_IMAGE}" in task.dockerfile.read_text()
    assert task.break_lines(), "a task Dockerfile has at least one breaking line"
    load_gold(task.spec.gold)  # its gold exists


def test_a_task_listing_a_test_as_both_failing_and_passing_is_refused(tmp_path: Path) -> None:
    task = tmp_path / TASK_DIRS[0].name
    shutil.copytree(TASK_DIRS[0], task)
    spec = task / "task.yaml"
    data = yaml.safe_load(spec.read_text())
    data["pass_to_pass"] = [*data["pass_to_pass"], data["fail_to_pass"][0]]
    spec.write_text(yaml.safe_dump(data))
    with pytest.raises(SpecError) as info:
        load_task(task)
    assert str(spec) in str(info.value) and "both fail_to_pass and pass_to_pass" in str(info.value)


def test_gold_by_name_and_by_path_agree() -> None:
    by_name = load_gold("click")
    by_path = load_gold(ROOT / "tasks" / "gold" / "click")
    assert by_name.path == by_path.path and by_name.spec == by_path.spec


def _copy_gold(tmp_path: Path, name: str = "click") -> Path:
    dest = tmp_path / name
    shutil.copytree(ROOT / "tasks" / "gold" / name, dest)
    return dest


def test_malformed_field_names_file_and_field(tmp_path: Path) -> None:
    gold = _copy_gold(tmp_path)
    spec = gold / "gold.yaml"
    spec.write_text(spec.read_text().replace("test_timeout: 600", "test_timeout: soon"))
    with pytest.raises(SpecError) as info:
        load_gold(gold)
    message = str(info.value)
    assert str(spec) in message and "test_timeout" in message


def test_unknown_field_and_missing_field_are_reported(tmp_path: Path) -> None:
    gold = _copy_gold(tmp_path)
    spec = gold / "gold.yaml"
    text = spec.read_text().replace("workdir: /testbed\n", "workdri: /testbed\n")
    spec.write_text("\n".join(line for line in text.splitlines() if not line.startswith("test_command")))
    with pytest.raises(SpecError) as info:
        load_gold(gold)
    assert "workdri" in str(info.value) and "test_command" in str(info.value)


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    gold = _copy_gold(tmp_path)
    (gold / "gold.yaml").write_text("name: [unclosed\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_gold(gold)
    (gold / "gold.yaml").write_text("- a list\n")
    with pytest.raises(SpecError, match="mapping"):
        load_gold(gold)


def test_unknown_gold_name_lists_known_ones() -> None:
    with pytest.raises(SpecError, match="known golds: .*click"):
        load_gold("no-such-gold")


def test_relative_workdir_rejected() -> None:
    with pytest.raises(ValueError, match="absolute"):
        GoldSpec(
            name="x", description="d", version="1", source={"pypi": "x==1"}, test_command="t", workdir="app"
        )


def test_malformed_task_names_field(tmp_path: Path) -> None:
    if not TASK_DIRS:
        pytest.skip("no tasks generated yet")
    task = tmp_path / TASK_DIRS[0].name
    shutil.copytree(TASK_DIRS[0], task)
    spec = task / "task.yaml"
    spec.write_text(spec.read_text().replace("category: ", "category: nonsense-"))
    with pytest.raises(SpecError) as info:
        load_task(task)
    assert str(spec) in str(info.value) and "category" in str(info.value)
    assert list_tasks(tmp_path / "nowhere") == []


def test_dockerfile_text_groups_commands_into_run(tmp_path: Path) -> None:
    commands = ["rm -f /usr/bin/less", "chmod 0600 /usr/bin/perl", "ENV X=1", "echo 'a && b' > /tmp/x"]
    text = dockerfile_text(commands, comment="why")
    assert text.splitlines() == [
        "# why",
        "ARG CLIGYM_GOLD_IMAGE",
        "FROM ${CLIGYM_GOLD_IMAGE}",
        "RUN rm -f /usr/bin/less \\",
        " && chmod 0600 /usr/bin/perl",
        "ENV X=1",
        "RUN echo 'a && b' > /tmp/x",
    ]
    # break_lines reads the commands back, from this layout and from one RUN per command.
    task = Task(tmp_path, None)  # only the Dockerfile is read
    (tmp_path / "Dockerfile").write_text(text)
    assert task.break_lines() == commands
    (tmp_path / "Dockerfile").write_text("FROM x\nRUN rm -f /usr/bin/less\nRUN chmod 0600 /usr/bin/perl\n")
    assert task.break_lines() == commands[:2]
    # The diff-and-load build takes only the gold plus one shell-form RUN, joined as Docker joins it.
    assert single_run_command(text) is None  # ENV and a second RUN: docker build
    one = dockerfile_text(commands[:2], comment="why")
    assert single_run_command(one) == "rm -f /usr/bin/less  && chmod 0600 /usr/bin/perl"
    assert single_run_command(one.replace("RUN rm", 'RUN ["rm"')) is None  # exec form
    assert single_run_command("FROM x\nRUN true\n") is None


def test_oversized_text_field_names_file_and_field(tmp_path: Path) -> None:
    if not TASK_DIRS:
        pytest.skip("no tasks generated yet")
    task = tmp_path / TASK_DIRS[0].name
    shutil.copytree(TASK_DIRS[0], task)
    spec = task / "task.yaml"
    data = yaml.safe_load(spec.read_text())
    data["instruction"] = "x" * 10_000_000
    spec.write_text(yaml.safe_dump(data))
    started = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_task(task)
    message = str(info.value)
    assert str(spec) in message and "field 'instruction'" in message and "at most 65536" in message
    assert time.monotonic() - started < 10


def test_oversized_spec_file_is_refused_before_it_is_read(tmp_path: Path, monkeypatch) -> None:
    gold = _copy_gold(tmp_path)
    spec = gold / "gold.yaml"
    monkeypatch.setattr(specs, "MAX_SPEC_BYTES", 1000)
    spec.write_text(spec.read_text() + "# padding\n" * 200)
    with pytest.raises(SpecError, match=rf"{spec}: \d+ bytes, more than a spec may have \(1000\)"):
        load_gold(gold)
    spec.unlink()
    spec.symlink_to("/dev/zero")  # no size, and no end: still refused after MAX_SPEC_BYTES + 1 bytes
    with pytest.raises(SpecError, match="1001 bytes, more than a spec may have"):
        load_gold(gold)


def test_spec_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    gold = _copy_gold(tmp_path)
    (gold / "gold.yaml").write_bytes(b"name: caf\xe9\n")
    with pytest.raises(SpecError, match="not valid UTF-8"):
        load_gold(gold)


def test_task_yaml_is_written_by_libyaml_exactly_as_the_pure_python_dumper_writes_it() -> None:
    class PurePython(yaml.SafeDumper):
        pass

    PurePython.add_representer(str, specs._str_representer)
    for path in TASK_DIRS[:6]:
        spec = load_task(path).spec
        data = spec.model_dump(mode="json", exclude_none=True)
        expected = yaml.dump(data, Dumper=PurePython, sort_keys=False, allow_unicode=True, width=110)
        assert specs.dump_yaml_model(spec) == expected
        assert load_task(path).spec == spec


def test_golds_are_found_in_your_project_folder_then_in_cligyms_own(tmp_path: Path, monkeypatch) -> None:
    """With an installed cligym, `./tasks/gold` of the folder you work in holds your golds; the shipped ones
    are still found by name, and `$CLIGYM_GOLD_ROOT` comes first."""
    mine = tmp_path / "project" / "tasks" / "gold"
    shutil.copytree(ROOT / "tasks" / "gold" / "click", mine / "click")
    shutil.copytree(ROOT / "tasks" / "gold" / "tabulate", mine / "my-tabulate")
    spec = mine / "my-tabulate" / "gold.yaml"
    spec.write_text(spec.read_text().replace("name: tabulate", "name: my-tabulate", 1))
    monkeypatch.chdir(tmp_path / "project")
    monkeypatch.delenv("CLIGYM_GOLD_ROOT", raising=False)
    assert default_gold_root().resolve() == mine.resolve()
    assert load_gold("my-tabulate").path == (mine / "my-tabulate").resolve()
    assert load_gold("click").path == (mine / "click").resolve()  # yours wins over the shipped one
    assert load_gold("pyyaml").path == (ROOT / "tasks" / "gold" / "pyyaml").resolve()
    other = tmp_path / "elsewhere"
    shutil.copytree(ROOT / "tasks" / "gold" / "click", other / "click")
    monkeypatch.setenv("CLIGYM_GOLD_ROOT", str(other))
    assert load_gold("click").path == (other / "click").resolve() and default_gold_root() == other
    with pytest.raises(SpecError, match="no such folder"):
        load_gold("no-such-gold")
