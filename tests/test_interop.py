"""Terminal-Bench / Harbor export and import: layouts, a standalone verifier, and an exact round trip."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cligym_env.errors import SpecError
from cligym_env.interop import export_task, import_task
from cligym_env.task import list_tasks, load_task

GENERATED = Path(__file__).resolve().parent.parent / "tasks" / "generated"


@pytest.mark.parametrize("fmt", ["terminal-bench", "harbor"])
def test_round_trip_gives_an_equivalent_task(tmp_path, fmt):
    for task in list_tasks(GENERATED):
        folder = export_task(task, tmp_path / "out", fmt)
        back = import_task(folder, tmp_path / "back")
        assert back.spec == task.spec
        assert back.dockerfile.read_text() == task.dockerfile.read_text()
        assert back.solution_script() == task.solution_script()
        assert load_task(back.path).id == task.id


def test_terminal_bench_layout(tmp_path):
    task = load_task(GENERATED / "tabulate-wide-chars")
    folder = export_task(task, tmp_path, "terminal-bench")
    for name in (
        "task.yaml",
        "Dockerfile",
        "docker-compose.yaml",
        "solution.sh",
        "run-tests.sh",
        "tests/check_results.py",
    ):
        assert (folder / name).is_file(), name
    meta = yaml.safe_load((folder / "task.yaml").read_text())
    assert meta["instruction"] == task.spec.prompt() and meta["parser_name"] == "pytest"
    assert {"difficulty", "category", "tags", "max_agent_timeout_sec", "max_test_timeout_sec"} <= set(meta)
    assert "ARG CLIGYM_GOLD_IMAGE=cligym/gold-tabulate:latest" in (folder / "Dockerfile").read_text()
    assert "client:" in (folder / "docker-compose.yaml").read_text()


def test_harbor_layout(tmp_path):
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    task = load_task(GENERATED / "toolz-python-not-executable")
    folder = export_task(task, tmp_path, "harbor")
    for name in (
        "instruction.md",
        "task.toml",
        "environment/Dockerfile",
        "solution/solve.sh",
        "tests/test.sh",
    ):
        assert (folder / name).is_file(), name
    config = tomllib.loads((folder / "task.toml").read_text())
    assert (
        config["metadata"]["category"] == "file-system" and config["environment"]["allow_internet"] is False
    )
    assert "/logs/verifier/reward.txt" in (folder / "tests" / "test.sh").read_text()


def test_exported_verifier_checks_the_expected_tests(tmp_path):
    task = load_task(GENERATED / "tabulate-wide-chars")
    tests = export_task(task, tmp_path, "terminal-bench") / "tests"
    results = tmp_path / "results.xml"
    expected = json.loads((tests / "expected.json").read_text())
    expected["results_path"] = str(results)
    (tests / "expected.json").write_text(json.dumps(expected))

    def check(failing: set[str]) -> subprocess.CompletedProcess:
        cases = []
        for test_id in task.spec.fail_to_pass + task.spec.pass_to_pass:
            cls, name = test_id.split("::", 1)
            body = "<failure/>" if test_id in failing else ""
            cases.append(
                f'<testcase classname="{cls}" name="{name.replace(chr(34), "&quot;")}">{body}</testcase>'
            )
        results.write_text(f"<testsuites><testsuite>{''.join(cases)}</testsuite></testsuites>")
        return subprocess.run(
            [sys.executable, str(tests / "check_results.py")], capture_output=True, text=True
        )

    ok = check(set())
    assert ok.returncode == 0 and f"PASSED {task.spec.fail_to_pass[0]}" in ok.stdout
    bad = check({task.spec.fail_to_pass[0]})
    assert bad.returncode == 1 and f"FAILED {task.spec.fail_to_pass[0]}" in bad.stdout


def test_import_refuses_folders_that_are_not_cligym_exports(tmp_path):
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "task.yaml").write_text("instruction: hi\n")
    with pytest.raises(SpecError, match="not a cligym export"):
        import_task(tmp_path / "foreign", tmp_path / "out")


def test_cli_tasks_export_import(tmp_path):
    cli = [sys.executable, "-m", "cligym_env.cli"]
    task = str(GENERATED / "click-pager-missing")
    done = subprocess.run(cli + ["tasks", "export", task, "--format", "harbor", "--out", str(tmp_path / "h"), "--json"],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0 and json.loads(done.stdout)["format"] == "harbor"
    done = subprocess.run(cli + ["tasks", "import", str(tmp_path / "h"), "--out", str(tmp_path / "t"), "--json"],
                          capture_output=True, text=True)  # fmt: skip
    assert json.loads(done.stdout)["imported"] == ["click-pager-missing"]
    bad = subprocess.run(cli + ["tasks", "export", str(tmp_path / "empty"), "--out", str(tmp_path / "x")],
                         capture_output=True, text=True)  # fmt: skip
    assert bad.returncode == 1 and "no task folders" in bad.stderr and "Traceback" not in bad.stderr
    bad = subprocess.run(
        cli + ["run", "--agent", "gpt9", "--out", str(tmp_path / "r")], capture_output=True, text=True
    )
    assert bad.returncode == 1 and "unknown agent 'gpt9'" in bad.stderr and "Traceback" not in bad.stderr
