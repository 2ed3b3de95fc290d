"""A task's broken image: the gold image plus the task's Dockerfile, built once and named by content hash.

Building an image and scoring a task belong with the task: the gym env, rollouts and validation all use these.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

from cligym_env.gold import load_gold
from cligym_env.gold_image import build_gold
from cligym_env.harness import Verdict, score_container
from cligym_env.runtime.containers import docker_client
from cligym_env.runtime.images import build_image, content_hash, image_exists
from cligym_env.runtime.layers import run_as_layer
from cligym_env.task import Task, single_run_command
from cligym_env.testing import TestReport
from cligym_env.testing.runner import run_spec_tests

Progress = Callable[[str], None]

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


@lru_cache(maxsize=256)
def gold_image_of(gold_name: str) -> str:
    """The gold's current image (built if missing), looked up once per process."""
    image, _ = build_gold(load_gold(gold_name))
    return image


def run_task_tests(task: Task, container) -> TestReport:
    """Run the task's test command in a running container that no agent touched (gold, broken, live)."""
    return run_spec_tests(task.spec, container)


def score_task_container(task: Task, container, *, since: float, image: str) -> Verdict:
    """Score a container an agent (or a repair script) worked in since host time `since`: see `harness`."""
    return score_container(
        task, container, since=since, image=image, gold_image=gold_image_of(task.spec.gold)
    )
