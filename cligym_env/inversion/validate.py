"""Build a task's broken image and check it: FAIL_TO_PASS fail, PASS_TO_PASS pass, `solution.sh` repairs both."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cligym_env.gold import load_gold
from cligym_env.gold_image import build_gold
from cligym_env.runtime.containers import docker_client, exec_once, remove_container, start_container
from cligym_env.runtime.images import build_image, content_hash, image_exists
from cligym_env.runtime.layers import run_as_layer
from cligym_env.task import Task, single_run_command
from cligym_env.testing import Outcome, TestReport, run_tests

Progress = Callable[[str], None]
SOLUTION_TIMEOUT = 600.0
# How a one-RUN broken image is made: "diff" (run the command, load its changes as a layer) or "docker"
# (`docker build`, e.g. to compare; the result is the same file system).
LAYER_COMMIT = os.environ.get("CLIGYM_LAYER_COMMIT", "diff")


def build_broken_image(
    gold_name: str, dockerfile: str, *, files: Path | None = None, repo: str, progress: Progress | None = None
) -> str:
    """Build `dockerfile` (FROM ${CLIGYM_GOLD_IMAGE}) on top of the gold's current image; cached by content hash."""
    gold_image, _ = build_gold(load_gold(gold_name), progress=progress)
    gold_id = docker_client().images.get(gold_image).id
    with tempfile.TemporaryDirectory(prefix="cligym-task-") as tmp:
        context = Path(tmp)
        (context / "Dockerfile").write_text(dockerfile, encoding="utf-8")
        has_files = bool(files and files.is_dir())
        if has_files:
            shutil.copytree(files, context / "files")
        image = f"{repo}:{content_hash([context], gold_id)}"
        if image_exists(image):
            return image
        # One RUN and no files (what the inverters write): run it and load the diff as the layer, a few times
        # faster than `docker build` on drivers without native diffs (runtime/layers.py).
        command = None if has_files or LAYER_COMMIT == "docker" else single_run_command(dockerfile)
        if command is None or run_as_layer(gold_image, command, image) is None:
            # No labels: each LABEL is one more layer commit, and the repo name says what the image is.
            build_image(context, image, buildargs={"CLIGYM_GOLD_IMAGE": gold_image}, what="broken image")
    return image


def build_task_image(task: Task, progress: Progress | None = None) -> str:
    """The task's broken image (built if missing)."""
    return build_broken_image(
        task.spec.gold,
        task.dockerfile.read_text(encoding="utf-8"),
        files=task.path / "files",
        repo=task.image_repo,
        progress=progress,
    )


def run_task_tests(task: Task, container) -> TestReport:
    """Run the task's test command in a running container (in whatever state it is)."""
    spec = task.spec
    return run_tests(
        container,
        spec.test_command,
        results_path=spec.results.path,
        results_format=spec.results.format,
        workdir=spec.workdir,
        timeout=spec.timeouts.tests,
    )


def tests_in_fresh_container(
    image: str, task: Task, before_tests: str | None = None
) -> tuple[TestReport, str]:
    """Start a container of `image`, optionally run a script (the repair), run the tests, remove the container.

    Returns the report and the script's output.
    """
    container = start_container(image, network=task.spec.network, workdir=task.spec.workdir)
    try:
        output = ""
        if before_tests is not None:
            result = exec_once(container, before_tests, timeout=SOLUTION_TIMEOUT, workdir=task.spec.workdir)
            output = result.output
        return run_task_tests(task, container), output
    finally:
        remove_container(container)


@dataclass
class ValidationResult:
    """The outcome of `validate_task`: ok, or the problems found."""

    task_id: str
    problems: list[str] = field(default_factory=list)
    broken: TestReport | None = None
    repaired: TestReport | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems


def _expect(report: TestReport, tests: list[str], passing: bool, label: str) -> list[str]:
    wrong = [t for t in tests if (report.status_of(t) is Outcome.PASSED) != passing]
    if not wrong:
        return []
    state = "pass" if passing else "fail"
    shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
    note = f" [{report.error}]" if report.error else ""
    return [f"{label}: {len(wrong)} of {len(tests)} tests do not {state}: {shown}{note}"]


def validate_task(task: Task, progress: Progress | None = None) -> ValidationResult:
    """Rebuild the broken image; check FAIL_TO_PASS fail and PASS_TO_PASS pass; then check `solution.sh` repairs."""
    started = time.monotonic()
    say = progress or (lambda _msg: None)
    result = ValidationResult(task.id)
    spec = task.spec
    image = build_task_image(task, progress)
    say(f"{task.id}: running tests in the broken image")
    result.broken, _ = tests_in_fresh_container(image, task)
    result.problems += _expect(result.broken, spec.fail_to_pass, False, "broken image, FAIL_TO_PASS")
    result.problems += _expect(result.broken, spec.pass_to_pass, True, "broken image, PASS_TO_PASS")
    say(f"{task.id}: running solution.sh, then the tests")
    result.repaired, solution_output = tests_in_fresh_container(
        image, task, before_tests=task.solution_script()
    )
    targets = spec.fail_to_pass + spec.pass_to_pass
    problems = _expect(result.repaired, targets, True, "after solution.sh")
    if problems:
        problems[-1] += f"\nsolution.sh output (tail):\n{solution_output[-800:]}"
    result.problems += problems
    result.seconds = round(time.monotonic() - started, 1)
    return result
