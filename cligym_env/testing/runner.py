"""Run a test command inside a running container and collect a TestReport, with the harness's own tools.

The test command gets the login environment (`bash -l`: /etc/profile.d faults count) as data, runs under the
trusted busybox sh, and writes its results into a fresh random folder on the container's private tmpfs, which
is read only after every process in the container has been stopped. Nothing the harness needs (the results
path, `tee`, `timeout`, the shell around the command) is reachable by a fault or by an agent.
"""

from __future__ import annotations

import re
import secrets
import time

from cligym_env.errors import TestRunError
from cligym_env.runtime.toolkit import (
    BUSYBOX,
    PRIVATE_ROOT,
    HarnessError,
    kill_all_processes,
    quote,
    run_tool,
)
from cligym_env.testing.login import LoginEnvironment, capture_login_environment
from cligym_env.testing.parsers import parse_results
from cligym_env.testing.report import TestReport

RESULTS_LIMIT = 64 << 20  # bytes of results read at most (a 7,000-test JUnit file is ~3 MB)
OUTPUT_TAIL = 4000
STDOUT_FORMATS = ("tap", "cargo", "automake")


def harness_command(command: str, results_path: str, results_format: str, private: str) -> tuple[str, str]:
    """The test command as the harness runs it, and the file that holds its results.

    JUnit: the spec's results path is replaced by one in `private`. Formats read from the output (TAP, cargo,
    automake): a trailing `| tee RESULTS` is dropped, since the harness keeps the output itself.
    """
    output = f"{private}/output"
    if results_format in STDOUT_FORMATS:
        pattern = rf"\s*\|\s*tee\s+(?:-a\s+)?{re.escape(results_path)}\s*$"
        return re.sub(pattern, "", command), output
    if results_path not in command:
        raise TestRunError(f"the test command does not write its results to {results_path}: {command}")
    results = f"{private}/results.xml"
    return command.replace(results_path, results), results


def _run_script(command: str, login: LoginEnvironment, workdir: str, private: str, timeout: float) -> str:
    """The busybox sh script that runs `command` with exactly the login environment's values."""
    variables = " ".join(
        quote(f"{k}={v}") for k, v in login.variables.items() if not k.startswith("BASH_FUNC_")
    )
    return (
        f"mkdir -p {private} || exit 96\n"
        f"{login.script_prelude()}\n"
        f"cd {quote(workdir)} || {{ echo 'cannot cd to {workdir}' > {private}/output; exit 97; }}\n"
        f"{BUSYBOX} timeout -s KILL {int(timeout)} {BUSYBOX} env -i {variables} "
        f"{BUSYBOX} sh -c {quote(command)} > {private}/output 2>&1 < /dev/null\n"
        'echo "rc=$?"\n'
    )


def run_tests(
    container,
    command: str,
    *,
    results_path: str,
    results_format: str = "junit",
    workdir: str | None = None,
    timeout: float = 600,
    login: LoginEnvironment | None = None,
) -> TestReport:
    """Run `command` (the test command of a gold or task) in `container` and parse its results.

    Never raises for a broken suite or a broken container: a timeout, a suite that cannot import, a login
    shell that fails, or a missing results file gives a report with `error` set, and every test it did not
    report counts as failed (see `TestReport.status_of`). `login` reuses a captured login environment.
    """
    private = f"{PRIVATE_ROOT}/{secrets.token_hex(10)}"
    command, results_file = harness_command(command, results_path, results_format, private)
    report = TestReport()
    started = time.monotonic()
    try:
        if login is None:
            login = capture_login_environment(container, workdir or "/")
            kill_all_processes(container)  # whatever the profile left running
        run = run_tool(
            container,
            _run_script(command, login, workdir or "/", private, timeout),
            timeout=timeout + 30,
            limit=1 << 16,
        )
        report.seconds = time.monotonic() - started
        match = re.search(r"rc=(\d+)", run.output.decode(errors="replace"))
        report.exit_code = int(match[1]) if match else run.exit_code
        report.timed_out = report.exit_code == 137 and report.seconds >= timeout
        kill_all_processes(container)  # what the tests started: nothing may write once reading begins
        tail = run_tool(container, f"tail -c {OUTPUT_TAIL} {private}/output", timeout=30)
        report.output_tail = tail.output.decode("utf-8", errors="replace")
        data = run_tool(
            container,
            f"[ -f {results_file} ] || exit 3; exec cat {results_file}",
            timeout=120,
            limit=RESULTS_LIMIT,
        )
    except HarnessError as exc:
        report.error = str(exc)
        return report
    if report.timed_out:
        report.error = f"test command timed out after {timeout:g}s"
    if data.overflow:
        report.error = report.error or f"the results are larger than {RESULTS_LIMIT >> 20} MiB"
        return report
    if data.exit_code != 0:
        report.error = report.error or f"test command wrote no results (exit code {report.exit_code})"
        return report
    try:
        report.outcomes = parse_results(results_format, data.output)
    except TestRunError as exc:
        report.error = str(exc)
    if not report.outcomes and not report.error:
        report.error = f"the results list no tests (exit code {report.exit_code})"
    return report


def run_spec_tests(spec, container, login: LoginEnvironment | None = None) -> TestReport:
    """`run_tests` with a task spec's test command, results, workdir and test timeout."""
    return run_tests(
        container,
        spec.test_command,
        results_path=spec.results.path,
        results_format=spec.results.format,
        workdir=spec.workdir,
        timeout=spec.timeouts.tests,
        login=login,
    )
