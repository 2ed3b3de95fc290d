"""The `cligym` command line as a user runs it: help, and one readable error for bad input."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cligym(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cligym_env.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        cwd=ROOT,
        timeout=120,
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["base", "build"],
        ["gold", "list"],
        ["gold", "build"],
        ["gold", "verify"],
        ["tasks", "make"],
        ["tasks", "stats"],
        ["tasks", "audit"],
        ["tasks", "restate"],
        ["tasks", "calibrate"],
        ["generate"],
        ["validate"],
        ["solve"],
        ["shell"],
        ["gc"],
    ],
    ids=lambda c: " ".join(c) or "top",
)
def test_help(command: list[str]) -> None:
    result = cligym(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout


def test_malformed_gold_spec_is_one_clear_error(tmp_path: Path) -> None:
    gold = tmp_path / "click"
    shutil.copytree(ROOT / "tasks" / "gold" / "click", gold)
    (gold / "gold.yaml").write_text(
        (gold / "gold.yaml").read_text().replace("network: false", "network: maybe")
    )
    result = cligym("gold", "build", str(gold))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "gold.yaml" in result.stderr and "network" in result.stderr


def test_docker_daemon_down_is_one_clear_error(tmp_path: Path) -> None:
    result = cligym("gc", env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Docker daemon" in result.stderr


def test_missing_task_folder(tmp_path: Path) -> None:
    result = cligym("validate", str(tmp_path / "nothing"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "no task folders" in result.stderr


def test_run_refuses_an_extra_body_that_is_not_a_json_object(tmp_path: Path) -> None:
    task = str(ROOT / "tasks" / "generated" / "tabulate-wide-chars")
    for bad, why in (("{oops", "not JSON"), ("[1]", "a JSON object is needed")):
        result = cligym(
            "run", "--agent", "llm", "--out", str(tmp_path / "run"), "--tasks", task, "--extra-body", bad
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "--extra-body" in result.stderr and why in result.stderr
    assert not (tmp_path / "run").exists()


def test_gold_list_json() -> None:
    import json

    result = cligym("gold", "list", "--json")
    assert result.returncode == 0, result.stderr
    names = {row["name"] for row in json.loads(result.stdout)}
    assert {"click", "jinja2", "h11"} <= names


@pytest.mark.slow
def test_validate_exits_non_zero_for_an_invalid_task(tmp_path: Path) -> None:
    task = tmp_path / "tabulate-wide-chars"
    shutil.copytree(ROOT / "tasks" / "generated" / "tabulate-wide-chars", task)
    dockerfile = task / "Dockerfile"
    text = dockerfile.read_text()
    dockerfile.write_text(text[: text.index("\nRUN ")] + "\n")  # no breaking RUN: the healthy gold
    result = cligym("validate", str(task))
    assert result.returncode == 1 and "FAILED" in result.stderr and "Traceback" not in result.stderr
