"""Per-test outcomes of one test run, and how they score against FAIL_TO_PASS / PASS_TO_PASS."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum


class Outcome(str, Enum):
    """The outcome of one test case."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


@dataclass
class TestReport:
    """Outcomes of one run of a test command, keyed by test id (`classname::name` for JUnit)."""

    __test__ = False  # not a pytest test class

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    exit_code: int | None = None
    seconds: float = 0.0
    timed_out: bool = False
    error: str | None = None
    """Why there are no (or incomplete) results: a timeout, a suite that failed to import, no results file."""
    output_tail: str = ""

    @property
    def passed(self) -> set[str]:
        return {t for t, o in self.outcomes.items() if o is Outcome.PASSED}

    @property
    def not_passed(self) -> set[str]:
        """Failed or errored tests (skipped ones are neither)."""
        return {t for t, o in self.outcomes.items() if o in (Outcome.FAILED, Outcome.ERROR)}

    def status_of(self, test_id: str) -> Outcome:
        """A test missing from the results (the suite did not run it, e.g. it failed to import) counts as failed."""
        return self.outcomes.get(test_id, Outcome.FAILED)

    def score(self, fail_to_pass: list[str], pass_to_pass: list[str]) -> TestScore:
        """How many target tests pass; `resolved` only when every one does."""
        f2p_ok = [t for t in fail_to_pass if self.status_of(t) is Outcome.PASSED]
        p2p_ok = [t for t in pass_to_pass if self.status_of(t) is Outcome.PASSED]
        return TestScore(
            fail_to_pass_passed=len(f2p_ok),
            fail_to_pass_total=len(fail_to_pass),
            pass_to_pass_passed=len(p2p_ok),
            pass_to_pass_total=len(pass_to_pass),
            still_failing=sorted(set(fail_to_pass + pass_to_pass) - set(f2p_ok) - set(p2p_ok)),
        )

    def claims_success(self) -> bool:
        """True when the run produced no results, yet its output ends the way a passing run's does (pytest's
        "N passed", prove's "All tests successful", cargo's "test result: ok", automake's "# FAIL:  0"):
        what broke is the reporting, not the tests."""
        if self.outcomes:
            return False
        tail = self.output_tail
        pytest = re.search(r"\b\d+ passed\b", tail) and not re.search(r"\b\d+ (failed|errors?)\b", tail)
        others = re.search(r"All tests successful|test result: ok\.|^# FAIL: +0$", tail, re.M)
        return bool(pytest or others) and "test result: FAILED" not in tail

    def summary(self) -> str:
        counts = {o: 0 for o in Outcome}
        for outcome in self.outcomes.values():
            counts[outcome] += 1
        text = ", ".join(f"{n} {o.value}" for o, n in counts.items() if n)
        return (text or "no test results") + (f" ({self.error})" if self.error else "")


@dataclass(frozen=True)
class TestScore:
    """Target tests passing after a run; `resolved` means all of them."""

    __test__ = False

    fail_to_pass_passed: int
    fail_to_pass_total: int
    pass_to_pass_passed: int
    pass_to_pass_total: int
    still_failing: list[str]

    @property
    def resolved(self) -> bool:
        return not self.still_failing

    @property
    def fraction(self) -> float:
        total = self.fail_to_pass_total + self.pass_to_pass_total
        return (self.fail_to_pass_passed + self.pass_to_pass_passed) / total if total else 0.0

    def as_dict(self) -> dict:
        return {
            "resolved": self.resolved,
            "fraction": round(self.fraction, 4),
            "fail_to_pass": f"{self.fail_to_pass_passed}/{self.fail_to_pass_total}",
            "pass_to_pass": f"{self.pass_to_pass_passed}/{self.pass_to_pass_total}",
            "still_failing": self.still_failing[:20],
        }
