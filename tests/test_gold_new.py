"""`cligym gold new NAME==VERSION`: a gold from a PyPI release, written, built and verified."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from cligym_env.gold import load_gold
from cligym_env.golds.scaffold import declared_test_dependencies, find_tests

ROOT = Path(__file__).resolve().parent.parent


def cligym(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cligym_env.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=900, env={**os.environ, "COLUMNS": "300"})  # fmt: skip


def test_the_suite_and_its_dependencies_are_found_where_projects_put_them(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "mypkg" / "tests").mkdir(parents=True)
    (src / "mypkg" / "tests" / "test_core.py").write_text("def test_x(): pass\n")
    assert find_tests(src, "MyPkg") == "mypkg/tests"
    (src / "tests").mkdir()
    (src / "tests" / "test_api.py").write_text("def test_y(): pass\n")
    assert find_tests(src, "mypkg") == "tests"
    (src / "PKG-INFO").write_text(
        "Metadata-Version: 2.1\nName: mypkg\nRequires-Dist: attrs>=21\n"
        "Requires-Dist: hypothesis; extra == 'tests'\nRequires-Dist: pytest-cov ; extra == \"tests\"\n"
        "Requires-Dist: sphinx; extra == 'docs'\n\nbody\n"
    )
    (src / "requirements-test.txt").write_text("# pinned\nfreezegun==1.5.1\n-r requirements.txt\n")
    assert declared_test_dependencies(src) == [
        "hypothesis",
        "freezegun",
    ]  # coverage plugins and docs left out
    empty = tmp_path / "empty"
    (empty / "docs").mkdir(parents=True)
    assert find_tests(empty, "x") is None


def test_gold_new_refuses_what_it_cannot_make(tmp_path: Path) -> None:
    for ref, why in (("inflection", "NAME==VERSION"), ("crate:semver==1.0.0", "by hand")):
        result = cligym("gold", "new", ref, "--root", str(tmp_path))
        assert result.returncode == 1 and why in result.stderr and "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_gold_new_writes_builds_and_verifies_a_pypi_project(tmp_path: Path) -> None:
    result = cligym("gold", "new", "inflection==0.5.1", "--root", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    out = json.loads(result.stdout)
    assert out["verified"] and out["n_passing"] > 100 and out["gold"] == "inflection"
    gold = load_gold(tmp_path / "inflection")
    assert gold.spec.source.pypi == "inflection==0.5.1" and gold.spec.wheels[0].startswith("pytest==")
    assert "pip install inflection pytest" in gold.dockerfile.read_text()
    assert len(gold.record().passing) == out["n_passing"]
    again = cligym("gold", "new", "inflection==0.5.1", "--root", str(tmp_path))
    assert again.returncode == 1 and "exists already" in again.stderr
