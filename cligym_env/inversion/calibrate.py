"""Difficulty, calibrated by the heuristic repair agent: how many steps it needs, or whether it fails."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym

from cligym_env.specs import dump_yaml_model, write_atomic
from cligym_env.task import TASK_FILE, Task

EASY_MAX_STEPS = 4  # run the tests, read the error, one repair, check: a pattern-matching agent's whole job


def difficulty_from(resolved: bool, n_steps: int) -> str:
    """easy: the heuristic agent repairs it in a few steps; medium: it gets there in more; hard: it fails."""
    if not resolved:
        return "hard"
    return "easy" if n_steps <= EASY_MAX_STEPS else "medium"


def calibrate_task(task: Task, *, episode_timeout: float = 900.0, write: bool = True) -> dict:
    """Play the heuristic agent once on `task`; store the difficulty in task.yaml (atomically) if `write`."""
    import cligym_env  # noqa: F401  (registers the environments)
    from agents.registry import make_policy
    from cligym_env.rollout import play_episode

    env = gym.make("cligym/Repair-v0", task=task, disable_env_checker=True)
    try:
        episode = play_episode(
            env, make_policy("heuristic", task), task, seed=0, episode_timeout=episode_timeout
        )
    finally:
        env.close()
    difficulty = difficulty_from(episode["resolved"], episode["n_steps"])
    if write and difficulty != task.spec.difficulty:
        task.spec = task.spec.model_copy(update={"difficulty": difficulty})
        write_atomic(task.path / TASK_FILE, dump_yaml_model(task.spec))
    return {
        "task": task.id,
        "difficulty": difficulty,
        "resolved": episode["resolved"],
        "n_steps": episode["n_steps"],
    }


def calibrate_tasks(
    tasks: list[Task],
    *,
    force: bool = False,
    workers: int = 1,
    on_result: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Calibrate every task that has no difficulty yet (all of them with `force`), `workers` at a time.

    Each result is written to its task.yaml as soon as it is known, so an interrupted run keeps what it did.
    """
    todo = [t for t in tasks if force or not t.spec.difficulty]
    results = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for result in pool.map(calibrate_task, todo):
            results.append(result)
            if on_result:
                on_result(result)
    return results
