"""Run a test command inside a running container and collect a TestReport."""

from __future__ import annotations

import shlex

import docker.errors

from cligym_env.errors import TestRunError
from cligym_env.runtime.containers import exec_once, read_file
from cligym_env.testing.parsers import parse_results
from cligym_env.testing.report import TestReport


def run_tests(
    container,
    command: str,
    *,
    results_path: str,
    results_format: str = "junit",
    workdir: str | None = None,
    timeout: float = 600,
) -> TestReport:
    """Run `command` (bash -lc, in `workdir`) in `container`, then parse `results_path`.

    Never raises for a broken suite: a timeout, a suite that cannot import or a missing results file
    gives a report with `error` set, and every test it did not report counts as failed (see
    `TestReport.status_of`).
    """
    exec_once(container, f"rm -f {shlex.quote(results_path)}", timeout=30)
    result = exec_once(container, command, timeout=timeout, workdir=workdir)
    report = TestReport(
        exit_code=result.exit_code,
        seconds=result.seconds,
        timed_out=result.timed_out,
        output_tail=result.output[-4000:],
    )
    if result.timed_out:
        report.error = f"test command timed out after {timeout:g}s"
    try:
        data = read_file(container, results_path)
    except docker.errors.APIError as exc:  # e.g. the path runs through a dangling symlink (a broken /tmp)
        report.error = report.error or f"cannot read {results_path}: {exc.explanation or exc}"
        return report
    if data is None:
        report.error = (
            report.error
            or f"test command wrote no results file {results_path} (exit code {result.exit_code})"
        )
        return report
    try:
        report.outcomes = parse_results(results_format, data)
    except TestRunError as exc:
        report.error = str(exc)
    if not report.outcomes and not report.error:
        report.error = f"results file {results_path} lists no tests (exit code {result.exit_code})"
    return report
