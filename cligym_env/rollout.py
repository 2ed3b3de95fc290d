"""Play a policy on tasks through `cligym/Repair-v0` and append one trajectory per episode to a JSONL file.

    run_dir/run.json             the run's configuration (agent, options, tasks, k, seeds, …)
    run_dir/trajectories.jsonl   one episode a line (schema: `EPISODE_FIELDS`), flushed and fsync'd per episode

Episodes run in parallel worker threads (an episode waits on Docker, not on the CPU), each with its own env.
A rerun skips the (task_id, sample) pairs already in the file, so a killed run resumes where it stopped. An
episode ends when the policy submits, at the task's `max_steps`, or at the per-episode wall-clock limit (then
the tests run as if it had submitted); a `PolicyError` ends it with reward 0 and the error recorded. Failures
of the machinery (Docker, an image build) are not written, so a rerun retries those episodes.

Example:
    >>> config = RunConfig(agent="oracle", tasks=["tasks/generated"], split="test", out="runs/oracle")
    >>> summary = run_rollouts(config)
    >>> summary["resolved"], summary["episodes"]
    (1, 1)
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from cligym_env.errors import CligymError
from cligym_env.splits import DEFAULT_TEST_FRACTION, SPLIT_BY, fault_split, split_of

TRAJECTORIES = "trajectories.jsonl"
RUN_FILE = "run.json"
EPISODE_FIELDS = (
    "task_id", "gold", "fault_family", "category", "difficulty", "agent", "model", "seed", "sample",
    "messages", "steps", "reward", "resolved", "tests", "n_steps", "wall_seconds", "stop", "error", "usage",
)  # fmt: skip


class RunConfig(BaseModel):
    """One `cligym run`: which agent plays which tasks, how often, and where the trajectories go."""

    agent: str
    """noop | oracle | heuristic | llm | hf:PATH."""
    tasks: list[str]
    """Task folders, or folders of task folders."""
    out: str
    """The run folder (receives run.json and trajectories.jsonl)."""
    split: str = "all"
    """train | test | all: the held-out split (see `cligym_env.splits`)."""
    split_by: str = "gold"
    """gold (hold out projects) | fault (hold out fault families and repair shapes)."""
    test_fraction: float = DEFAULT_TEST_FRACTION
    """Share of gold projects (or fault families) in the test split."""
    limit: int | None = None
    """Play at most this many tasks (after the split, in id order)."""
    k: int = Field(1, ge=1)
    """Samples per task (for Pass@k); sample i uses seed `seed + i`."""
    seed: int = 0
    """Seed of sample 0."""
    workers: int = Field(1, ge=1)
    """Episodes played at once."""
    max_steps: int | None = None
    """Override the tasks' max_steps."""
    episode_timeout: float | None = None
    """Per-episode wall-clock limit in seconds (default: each task's timeouts.episode)."""
    hard: bool = False
    """Show instructions without their hint."""
    warm_pool: int = 0
    """Containers of each task's image kept started ahead of time (`Repair-v0`'s `warm_pool`): resets of
    repeated tasks (`--k`, RL) skip the cold start."""
    options: dict[str, Any] = Field(default_factory=dict)
    """Policy options (llm: model, base_url, temperature, max_tokens, …); the api_key is never stored."""


def select_tasks(
    paths: list[str],
    split: str = "all",
    test_fraction: float = DEFAULT_TEST_FRACTION,
    limit: int | None = None,
    split_by: str = "gold",
):
    """The tasks under `paths` in the split, sorted by id; one clear error when there are none.

    `split_by="fault"` splits by fault family and repair shape: tasks that would straddle are in neither split.
    """
    from cligym_env.gold import default_gold_root
    from cligym_env.task import list_tasks

    if split not in ("train", "test", "all"):
        raise CligymError(f"unknown split '{split}' (use train, test or all)")
    if split_by not in SPLIT_BY:
        raise CligymError(f"unknown --split-by '{split_by}' (use {' or '.join(SPLIT_BY)})")
    found = {t.id: t for p in paths for t in list_tasks(Path(p))}
    if not found:
        raise CligymError(f"no task folders (with task.yaml) in {', '.join(map(str, paths))}")
    if split_by == "fault" and split != "all":
        chosen = getattr(fault_split(found.values(), test_fraction), split)
        if not chosen:
            raise CligymError(f"none of the {len(found)} tasks is in the {split} split (by fault)")
        chosen = [found[i] for i in sorted(chosen)]
        return chosen[:limit] if limit else chosen
    root = default_gold_root()
    golds = {t.summary.gold for t in found.values()} | (
        {p.name for p in root.iterdir() if (p / "gold.yaml").is_file()} if root.is_dir() else set()
    )
    chosen = [
        t for _, t in sorted(found.items())
        if split == "all" or split_of(t.summary.gold, test_fraction, golds=golds) == split
    ]  # fmt: skip
    if not chosen:
        raise CligymError(f"none of the {len(found)} tasks is in the {split} split")
    return chosen[:limit] if limit else chosen


def read_trajectories(path: Path) -> list[dict]:
    """The episodes in a trajectories file; a torn last line (a killed writer) is ignored."""
    if not path.is_file():
        return []
    episodes = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            episodes.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return episodes


class TrajectoryWriter:
    """Appends episodes to a JSONL file, one line each, flushed and fsync'd under a lock."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file() and path.stat().st_size:  # drop a torn last line so the next one starts clean
            data = path.read_bytes()
            if not data.endswith(b"\n"):
                path.write_bytes(data[: data.rfind(b"\n") + 1])

    def append(self, episode: dict) -> None:
        line = json.dumps(episode, ensure_ascii=False, default=str) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())


def play_episode(
    env,
    policy,
    task,
    *,
    seed: int,
    episode_timeout: float,
    hard: bool = False,
    stop: threading.Event | None = None,
) -> dict:
    """One episode of `policy` in a made (not reset) Repair-v0 `env`; returns the trajectory record."""
    from agents.prompt import SUBMIT, initial_messages, observation_message
    from agents.protocol import DeadlineReached, PolicyError

    start = time.monotonic()
    if hasattr(policy, "deadline"):  # a policy that waits on an endpoint stops waiting when the episode ends
        policy.deadline = start + episode_timeout
    env.reset(seed=seed)
    messages = initial_messages(task.spec.prompt(hard=hard))  # the raw text (the observation is ASCII-only)
    steps, usage, error, reason = [], {}, None, None
    while True:
        if time.monotonic() - start > episode_timeout or (stop is not None and stop.is_set()):
            command, reason = SUBMIT, "time_limit" if stop is None or not stop.is_set() else "interrupted"
        else:
            try:
                action = policy.act(messages)
            except DeadlineReached as exc:
                # The time limit, reached while the policy waited on its model: submit, as at the limit.
                messages.extend(exc.turns)
                action, command, reason = None, SUBMIT, "time_limit"
            except PolicyError as exc:
                messages.extend(exc.turns)
                error, reason = str(exc), "error"
                break
            if action is not None:
                for key, value in action.usage.items():
                    usage[key] = usage.get(key, 0) + value
                messages.extend(action.retries)  # replies without a command and their reminders, marked
                messages.append({"role": "assistant", "content": action.message, **action.extra})
                command = action.command
        _, reward, terminated, truncated, info = env.step(command)
        if terminated or truncated:
            reason = reason or ("submit" if terminated else "max_steps")
            if "output" in info:  # the last command ran before max_steps ended the episode
                steps.append(_step_record(command, info))
            break
        steps.append(_step_record(command, info))
        messages.append(
            {
                "role": "user",
                "content": observation_message(
                    info["output"], info.get("exit_code"), info.get("timed_out", False)
                ),
            }
        )
    tests = info.get("tests") if error is None else None
    resolved = bool(tests and tests.get("resolved")) and reward == 1.0
    if info.get("error") and error is None:  # the agent broke its own container: played, reward 0
        reason = "env_error"
    return {
        "reward": 1.0 if resolved else 0.0, "resolved": resolved, "tests": tests, "messages": messages,
        "steps": steps, "n_steps": len(steps), "wall_seconds": round(time.monotonic() - start, 2),
        "stop": reason, "error": error, "env_error": info.get("error"), "integrity": info.get("integrity"),
        "usage": usage,
    }  # fmt: skip


def _step_record(command: str, info: dict) -> dict:
    return {
        "command": command, "output": info["output"], "exit_code": info.get("exit_code"),
        "seconds": round(info.get("seconds", 0.0), 3), "timed_out": info.get("timed_out", False),
    }  # fmt: skip


def _model_of(config: RunConfig) -> str | None:
    if config.agent == "llm":
        return config.options.get("model") or os.environ.get("OPENAI_MODEL")
    return config.agent[3:] if config.agent.startswith("hf:") else None


def _cleanup_containers(process_ids: list[str]) -> int:
    """Remove the containers that the given cligym processes started (a killed earlier run of this folder)."""
    from cligym_env.runtime import containers

    return sum(containers.gc(labels={containers.PROCESS_LABEL: pid}) for pid in process_ids)


def _write_run_file(run_dir: Path, config: RunConfig, n_tasks: int) -> None:
    """Record the config in run.json, and this process's container label so a later run can clean up after it."""
    from cligym_env.runtime.containers import PROCESS_ID

    path = run_dir / RUN_FILE
    previous = json.loads(path.read_text()) if path.is_file() else {}
    stale = [p for p in previous.get("processes", []) if p != PROCESS_ID]
    if stale:
        _cleanup_containers(stale)
    if previous and previous.get("agent") != config.agent:
        raise CligymError(f"{run_dir} holds a run of agent '{previous.get('agent')}'; use another --out")
    options = {k: v for k, v in config.options.items() if k != "api_key"}
    record = config.model_dump() | {
        "options": options, "model": _model_of(config), "n_tasks": n_tasks, "processes": [PROCESS_ID],
        "started": previous.get("started") or time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }  # fmt: skip
    path.write_text(json.dumps(record, indent=1, default=str) + "\n", encoding="utf-8")


def run_rollouts(config: RunConfig, progress: bool = True, stop: threading.Event | None = None) -> dict:
    """Play every (task, sample) of `config` not yet in the run folder; returns a summary.

    `stop` (set it from a signal handler or another thread) makes workers submit and finish their episodes.
    """
    import gymnasium as gym

    import cligym_env  # noqa: F401  (registers the environments)
    from agents.registry import make_policy
    from cligym_env.task_image import build_task_image

    tasks = select_tasks(config.tasks, config.split, config.test_fraction, config.limit, config.split_by)
    make_policy(config.agent, tasks[0], **config.options)  # an unknown agent fails here, once
    run_dir = Path(config.out)
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_run_file(run_dir, config, len(tasks))
    writer = TrajectoryWriter(run_dir / TRAJECTORIES)
    done = {(e["task_id"], e["sample"]) for e in read_trajectories(writer.path)}
    todo = [(t, i) for t in tasks for i in range(config.k) if (t.id, i) not in done]
    stop = stop or threading.Event()
    summary = {"run_dir": str(run_dir), "episodes": len(done) + len(todo), "skipped": len(done), "played": 0,
               "resolved": 0, "policy_errors": 0, "failed": []}  # fmt: skip

    def one(task, sample: int) -> dict:
        seed = config.seed + sample
        policy = make_policy(config.agent, task, **{**config.options, "seed": seed})
        env = gym.make("cligym/Repair-v0", task=task, max_steps=config.max_steps, warm_pool=config.warm_pool,
                       disable_env_checker=True)  # fmt: skip
        try:
            result = play_episode(
                env, policy, task, seed=seed, hard=config.hard, stop=stop,
                episode_timeout=config.episode_timeout or task.spec.timeouts.episode,
            )  # fmt: skip
        finally:
            env.close()
        spec = task.spec
        return {
            "task_id": spec.id, "gold": spec.gold, "fault_family": spec.fault_family, "category": spec.category,
            "difficulty": spec.difficulty, "agent": config.agent, "model": _model_of(config), "seed": seed,
            "sample": sample, **result,
        }  # fmt: skip

    with _progress_bar(progress, len(todo)) as (bar, advance):
        for task in {t.id: t for t, _ in todo}.values():  # build each image once, before threads race for it
            if bar:
                bar(f"image {task.id}")
            build_task_image(task)
        with ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="cligym-episode") as pool:
            futures = {pool.submit(one, t, i): (t.id, i) for t, i in todo}
            try:
                for future in as_completed(futures):
                    task_id, sample = futures[future]
                    try:
                        episode = future.result()
                    except Exception as exc:  # the machinery failed: not recorded, a rerun retries it
                        summary["failed"].append(
                            {"task_id": task_id, "sample": sample, "error": f"{type(exc).__name__}: {exc}"}
                        )
                        advance(task_id, None)
                        continue
                    if episode["stop"] == "interrupted":
                        continue
                    writer.append(episode)
                    summary["played"] += 1
                    summary["resolved"] += episode["resolved"]
                    summary["policy_errors"] += episode["error"] is not None
                    advance(task_id, episode["resolved"])
            except BaseException:
                stop.set()
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            finally:
                if config.warm_pool:  # the containers started ahead of time for episodes that will not come
                    from cligym_env.runtime.pool import close_pools

                    close_pools()
    if stop.is_set():
        summary["interrupted"] = True
    return summary


@contextmanager
def _progress_bar(enabled: bool, total: int):
    """A rich progress bar of episodes (and how many resolved); yields (bar or None, advance(task_id, resolved))."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from cligym_env.commands.common import console

    if not enabled:
        yield None, lambda *_: None
        return
    resolved = 0
    columns = (TextColumn("{task.description:<40}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("resolved {task.fields[resolved]}"), TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as bar:
        tid = bar.add_task("episodes", total=total, resolved=0)

        def advance(task_id: str, ok: bool | None) -> None:
            nonlocal resolved
            resolved += bool(ok)
            bar.update(tid, advance=1, resolved=resolved, description=task_id)

        yield (lambda description: bar.update(tid, description=description)), advance
