"""Scoring an episode's container so that only a repair earns the reward (see SECURITY.md for the threat model).

`score_container` runs, in order:
1. the container must still be running (an agent that stopped or paused it scores 0 with `error` set);
2. restart it: every process the agent started dies, and the private tmpfs is emptied;
3. list what the episode changed (ctime, trusted busybox) and restore the project tree from the task image;
4. delete bytecode the episode wrote; check changed code files against the gold image;
5. capture the login environment as data and check the variables that steer what code runs;
6. unless something was tampered with, run the tests with the trusted runner (results on the private tmpfs,
   read after every process of the run has ended).

Example:
    >>> verdict = score_container(task, container, since=started_at, image=task_image)
    >>> verdict.report.score(task.spec.fail_to_pass, task.spec.pass_to_pass).resolved
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import docker.errors
import requests.exceptions

from cligym_env.harness import reference
from cligym_env.harness.changes import Findings, check_code, remove_bytecode, restore_workdir, scan_changes
from cligym_env.runtime.containers import container_state
from cligym_env.runtime.toolkit import HarnessError, kill_all_processes
from cligym_env.testing import TestReport
from cligym_env.testing.login import LoginEnvironment, capture_login_environment
from cligym_env.testing.runner import run_spec_tests

# Variables that may differ from both the healthy and the broken environment: they change how text, time and
# warnings look, never which code is loaded. Every other variable must have its healthy or its broken value.
FREE_VARIABLES = re.compile(
    r"^(?:PWD|OLDPWD|SHLVL|_|HOSTNAME|TERM|COLUMNS|LINES|MAIL|LOGNAME|USER|PAGER|GIT_PAGER|EDITOR|VISUAL"
    r"|PS[1-4]|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|TEMP|TMP|DEBIAN_FRONTEND|PIP_[A-Z_]+|PYTHONWARNINGS"
    r"|PYTHONIOENCODING|PYTHONUTF8|PYTHONDONTWRITEBYTECODE|PYTHONUNBUFFERED|PYTHONFAULTHANDLER|NO_COLOR"
    r"|FORCE_COLOR|PY_COLORS|CLICOLOR)$"
)


@dataclass
class Verdict:
    """The outcome of scoring one container: the test report, and what the integrity checks saw."""

    report: TestReport
    violations: list[str] = field(default_factory=list)
    """Tampering found; any makes the reward 0 (and the tests are not run)."""
    error: str | None = None
    """Why the container could not be scored at all (it stopped, was paused, the harness failed)."""
    findings: Findings = field(default_factory=Findings)
    seconds: float = 0.0

    def info(self) -> dict:
        """The `info["integrity"]` entry of an env step."""
        return {
            "ok": not self.violations and self.error is None,
            "violations": self.violations[:50],
            "restored": self.findings.restored[:50],
            "restored_count": len(self.findings.restored),
            "removed_bytecode": self.findings.removed_bytecode,
            "changed_files": self.findings.changed,
            "seconds": round(self.seconds, 2),
        }


def check_environment(
    now: LoginEnvironment, healthy: LoginEnvironment, broken: LoginEnvironment
) -> list[str]:
    """Variables and shell functions the login shell has that neither the healthy nor the broken image has."""
    problems = []
    for name in sorted(set(now.variables) | set(healthy.variables) | set(broken.variables)):
        if FREE_VARIABLES.match(name):
            continue
        value = now.variables.get(name)
        if value != healthy.variables.get(name) and value != broken.variables.get(name):
            shown = "unset" if value is None else repr(value[:80])
            problems.append(f"login environment: {name} is {shown}, neither its healthy nor its broken value")
    for name in sorted(set(now.functions) - set(healthy.functions) - set(broken.functions)):
        problems.append(f"login environment: the shell profile defines a function {name!r}")
    return problems


def score_container(task, container, *, since: float, image: str, gold_image: str) -> Verdict:
    """Score `container` (an episode of `task` started at host time `since` from `image`). Never raises for
    anything the episode did: a stopped container, a failing harness step give `Verdict.error`."""
    started = time.monotonic()
    verdict = Verdict(TestReport())
    try:
        state = container_state(container)
        if state != "running":
            verdict.error = f"the container is {state}: the episode broke its own environment"
        else:
            _score(task, container, since, image, gold_image, verdict)
    except (HarnessError, docker.errors.APIError, requests.exceptions.RequestException) as exc:
        verdict.error = f"could not score the container: {getattr(exc, 'explanation', None) or exc}"
    if verdict.error or verdict.violations:
        reason = verdict.error or "tampering: " + "; ".join(verdict.violations[:3])
        verdict.report = TestReport(error=reason)
    verdict.seconds = time.monotonic() - started
    return verdict


def _score(task, container, since: float, image: str, gold_image: str, verdict: Verdict) -> None:
    spec = task.spec
    container.restart(timeout=0)  # every process of the episode ends here
    changes, odd_names = scan_changes(container, since, time.time())
    findings = verdict.findings
    findings.changed = len(changes)
    findings.violations += [f"a file name with a line break: {n[:80]!r}" for n in odd_names]
    restore_workdir(container, changes, image, spec.workdir, findings)
    remove_bytecode(container, changes, spec.workdir, findings)
    check_code(container, changes, gold_image, spec.workdir, findings)
    login = capture_login_environment(container, spec.workdir)
    kill_all_processes(container)  # whatever the profile started
    healthy = reference.login_environment(gold_image, spec.workdir)
    broken = reference.login_environment(image, spec.workdir)
    findings.violations += check_environment(login, healthy, broken)
    verdict.violations = findings.violations
    if verdict.violations:
        return
    verdict.report = run_spec_tests(spec, container, login=login)
