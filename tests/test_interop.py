"""Terminal-Bench / Harbor export and import: layouts, a standalone verifier, and an exact round trip."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from samples import sampled_tasks

from cligym_env.errors import SpecError
from cligym_env.interop import export_task, import_task
from cligym_env.task import load_task

GENERATED = Path(__file__).resolve().parent.parent / "tasks" / "generated"


@pytest.mark.parametrize("fmt", ["terminal-bench", "harbor"])
def test_round_trip_gives_an_equivalent_task(tmp_path, fmt):
    for task in [load_task(p) for p in sampled_tasks()]:
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
    dockerfile = (folder / "Dockerfile").read_text()
    assert "ARG CLIGYM_GOLD_IMAGE=cligym/gold-tabulate:latest" in dockerfile
    # The title comment names the fault: left out (import puts it back).
    assert task.spec.title not in dockerfile and dockerfile.startswith("# The RUN's")
    compose = yaml.safe_load((folder / "docker-compose.yaml").read_text())
    assert compose["services"]["client"]["network_mode"] == "none"  # the task runs offline, as in cligym


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


def _results(fmt: str, outcomes: dict[str, bool]) -> str:
    """A results file of format `fmt` in which each test id passes or fails as `outcomes` says."""
    if fmt == "junit":
        cases = []
        for test_id, passed in outcomes.items():
            cls, name = test_id.split("::", 1)
            body = "" if passed else "<failure/>"
            cases.append(
                f'<testcase classname="{cls}" name="{name.replace(chr(34), "&quot;")}">{body}</testcase>'
            )
        return f"<testsuites><testsuite>{''.join(cases)}</testsuite></testsuites>"
    lines = []
    if fmt == "tap":
        for test_file in dict.fromkeys(t.split("::")[0] for t in outcomes):
            lines.append(f"{test_file} .. ")
            for test_id, passed in outcomes.items():
                if test_id.startswith(test_file + "::"):
                    lines.append(f"{'ok' if passed else 'not ok'} {test_id.rsplit('::', 1)[1]} - x")
    elif fmt == "cargo":
        for test_id, passed in outcomes.items():
            target, name = test_id.split("::", 1)
            lines.append("   Doc-tests crate" if target == "doc" else f"     Running {target} (target/x)")
            lines.append(f"test {name} ... {'ok' if passed else 'FAILED'}")
    else:
        lines = [f"{'PASS' if passed else 'FAIL'}: {test_id}" for test_id, passed in outcomes.items()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "task_id",
    ["tabulate-wide-chars", "perl-file-which-0eb62b4987", "rust-num-cpus-07bc8345d9", "libyaml-0a21870bd5"],
)
def test_exported_verifier_reads_every_results_format_and_gives_one_verdict(tmp_path, task_id):
    task = load_task(GENERATED / task_id)
    tests = export_task(task, tmp_path, "terminal-bench") / "tests"
    assert (tests / "cligym_parsers.py").is_file()
    results = tmp_path / "results"
    expected = json.loads((tests / "expected.json").read_text())
    assert expected["format"] == task.spec.results.format
    expected["results_path"] = str(results)
    (tests / "expected.json").write_text(json.dumps(expected))
    wanted = task.spec.fail_to_pass + task.spec.pass_to_pass

    def check(failing: set[str]) -> subprocess.CompletedProcess:
        results.write_text(_results(task.spec.results.format, {t: t not in failing for t in wanted}))
        # Run with a bare interpreter from elsewhere: the verifier needs nothing but its own folder.
        return subprocess.run([sys.executable, "-I", str(tests / "check_results.py")], capture_output=True,
                              text=True, cwd=tmp_path)  # fmt: skip

    def verdicts(out: str) -> list[str]:
        return [line for line in out.splitlines() if line.startswith(("PASSED", "FAILED"))]

    ok = check(set())
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert verdicts(ok.stdout) == ["PASSED cligym::all_expected_tests"]
    bad = check({task.spec.fail_to_pass[0]})
    assert bad.returncode == 1 and verdicts(bad.stdout) == ["FAILED cligym::all_expected_tests"]
    assert f"NOT OK {task.spec.fail_to_pass[0]}" in bad.stdout
    results.unlink()
    gone = subprocess.run([sys.executable, str(tests / "check_results.py")], capture_output=True, text=True)
    assert gone.returncode == 1 and verdicts(gone.stdout) == ["FAILED cligym::all_expected_tests"]


def test_a_passing_test_cannot_hide_a_failing_one_of_the_same_name(tmp_path):
    """Terminal-Bench keys a pytest line by the text after its first `::`: `a.TestX::test_x` and `b.TestY::test_x`
    would be one test there. The verifier prints one verdict for all, so a same-named pass hides nothing."""
    task = load_task(GENERATED / "tabulate-wide-chars")
    tests = export_task(task, tmp_path, "terminal-bench") / "tests"
    results = tmp_path / "results.xml"
    expected = {"results_path": str(results), "format": "junit", "fail_to_pass": ["a.TestX::test_x"],
                "pass_to_pass": ["b.TestY::test_x"]}  # fmt: skip
    (tests / "expected.json").write_text(json.dumps(expected))
    results.write_text(_results("junit", {"a.TestX::test_x": False, "b.TestY::test_x": True}))
    out = subprocess.run([sys.executable, str(tests / "check_results.py")], capture_output=True, text=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith(("PASSED", "FAILED"))]
    assert out.returncode == 1 and lines == ["FAILED cligym::all_expected_tests"]


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


def test_task_set_as_a_hugging_face_dataset_loads_back_and_imports_byte_for_byte(tmp_path):
    datasets = pytest.importorskip("datasets")
    with_files = next(p for p in sorted(GENERATED.iterdir()) if (p / "files").is_dir())
    chosen = sorted({*sampled_tasks(6), with_files, GENERATED / "tabulate-wide-chars"})
    picked = tmp_path / "picked"
    for folder in chosen:
        shutil.copytree(folder, picked / folder.name)
    cli = [sys.executable, "-m", "cligym_env.cli", "tasks"]
    done = subprocess.run(cli + ["export", str(picked), "--format", "hf", "--out", str(tmp_path / "hf"), "--json"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = datasets.load_from_disk(str(tmp_path / "hf"))
    assert sorted(rows["id"]) == sorted(p.name for p in chosen)
    row = rows[rows["id"].index("tabulate-wide-chars")]
    task = load_task(GENERATED / "tabulate-wide-chars")
    assert row["fail_to_pass"] == task.spec.fail_to_pass and row["gold_source"].startswith("pypi:tabulate==")
    assert row["instruction"] == task.spec.instruction and "FROM ${CLIGYM_BASE}" in row["gold_dockerfile"]
    card = (tmp_path / "hf" / "README.md").read_text()
    assert f"{len(chosen)} tasks" in card and "| tabulate |" in card and "load_from_disk" in card
    done = subprocess.run(cli + ["import", str(tmp_path / "hf"), "--out", str(tmp_path / "back"), "--json"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(json.loads(done.stdout)["imported"]) == sorted(p.name for p in chosen)
    for folder in chosen:
        back = tmp_path / "back" / folder.name
        originals = sorted(p.relative_to(folder) for p in folder.rglob("*") if p.is_file())
        assert sorted(p.relative_to(back) for p in back.rglob("*") if p.is_file()) == originals
        for name in originals:
            assert (back / name).read_bytes() == (folder / name).read_bytes(), f"{folder.name}/{name}"
    again = subprocess.run(cli + ["import", str(tmp_path / "hf"), "--out", str(tmp_path / "back"), "--json"],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert json.loads(again.stdout)["imported"] == [] and len(json.loads(again.stdout)["skipped"]) == len(
        chosen
    )


def test_importing_a_dataset_that_is_not_a_cligym_task_set_is_one_clear_error(tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_list([{"text": "hello"}]).save_to_disk(str(tmp_path / "other"))
    cli = [
        sys.executable,
        "-m",
        "cligym_env.cli",
        "tasks",
        "import",
        str(tmp_path / "other"),
        "--out",
        str(tmp_path / "t"),
    ]
    done = subprocess.run(
        cli, capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "300"}
    )
    assert done.returncode == 1 and "not a cligym task set" in done.stderr and "Traceback" not in done.stderr
    assert not any((tmp_path / "t").glob("*/task.yaml"))
