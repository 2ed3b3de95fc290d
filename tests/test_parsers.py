"""Test-result parsing on the JUnit XML that a real pytest run writes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cligym_env.errors import TestRunError
from cligym_env.testing import Outcome, TestReport, parse_results

SUITE = """
import pytest

def test_ok():
    assert True

def test_bad():
    assert 1 == 2

@pytest.mark.skip(reason="no")
def test_skipped():
    pass

@pytest.fixture
def broken():
    raise RuntimeError("setup")

def test_setup_error(broken):
    pass

@pytest.mark.parametrize("x", [1, 2])
def test_param(x):
    assert x == 1

class TestGroup:
    def test_method(self):
        pass
"""


@pytest.fixture(scope="module")
def junit_xml(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    folder = tmp_path_factory.mktemp("suite")
    (folder / "test_sample.py").write_text(SUITE)
    results = folder / "results.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={results}",
            str(folder),
        ],
        cwd=folder,
        capture_output=True,
    )
    return results.read_bytes()


def test_outcomes_from_real_pytest_run(junit_xml: bytes) -> None:
    outcomes = parse_results("junit", junit_xml)
    assert outcomes == {
        "test_sample::test_ok": Outcome.PASSED,
        "test_sample::test_bad": Outcome.FAILED,
        "test_sample::test_skipped": Outcome.SKIPPED,
        "test_sample::test_setup_error": Outcome.ERROR,
        "test_sample::test_param[1]": Outcome.PASSED,
        "test_sample::test_param[2]": Outcome.FAILED,
        "test_sample.TestGroup::test_method": Outcome.PASSED,
    }


def test_scoring_counts_missing_tests_as_failed(junit_xml: bytes) -> None:
    report = TestReport(outcomes=parse_results("junit", junit_xml))
    score = report.score(["test_sample::test_ok", "test_sample::never_ran"], ["test_sample::test_param[1]"])
    assert not score.resolved
    assert score.still_failing == ["test_sample::never_ran"]
    assert score.fraction == pytest.approx(2 / 3)
    assert report.score(["test_sample::test_ok"], []).resolved


def test_worst_outcome_wins_for_duplicates() -> None:
    xml = b"""<testsuites><testsuite>
      <testcase classname="a" name="t"/>
      <testcase classname="a" name="t"><error message="teardown"/></testcase>
    </testsuite></testsuites>"""
    assert parse_results("junit", xml) == {"a::t": Outcome.ERROR}


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TestRunError, match="not valid JUnit XML"):
        parse_results("junit", b"<testsuite><testcase")
    with pytest.raises(TestRunError, match="no result parser for format 'nunit'"):
        parse_results("nunit", b"ok 1")
