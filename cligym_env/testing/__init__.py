"""Running a test command in a container and reading per-test outcomes."""

from cligym_env.testing.parsers import PARSERS, parse_results
from cligym_env.testing.report import Outcome, TestReport
from cligym_env.testing.runner import run_tests

__all__ = ["PARSERS", "Outcome", "TestReport", "parse_results", "run_tests"]
