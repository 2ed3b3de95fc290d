"""`cligym/Repair-v0`: repair a broken environment with shell commands."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import docker.errors
import gymnasium as gym
import requests.exceptions

from cligym_env.envs.text import text_space, to_observation
from cligym_env.errors import CligymError
from cligym_env.runtime.pool import shared_pool
from cligym_env.runtime.session import ContainerSession
from cligym_env.task import Task, load_task
from cligym_env.task_image import build_task_image, score_task_container

SUBMIT = "submit"


class RepairEnv(gym.Env[str, str]):
    """
    ## Description
    A terminal agent repairs a broken software environment. Each episode starts a fresh container from a
    task's broken image (a healthy "gold" project whose environment was damaged by environment inversion);
    the project's unit tests decide whether the repair worked.

    ## Action Space
    `Text(max_length=max_command_length, charset=printable ASCII + whitespace)`: one shell command (any bash,
    several lines allowed), run in a persistent bash session (cwd and exported variables persist), with stdin
    `/dev/null` and a per-command timeout. The action `submit` ends the episode and runs the tests.

    ## Observation Space
    `Text(max_length=max_observation_length, charset=printable ASCII + whitespace)`. After `reset`: the task's
    instruction (the symptom, not the cause). After `step`: the command's merged stdout/stderr, capped (head and
    tail kept); characters outside the charset become `?` (the raw text is `info["output"]`). After the tests
    ran: a summary of the results.

    ## Rewards
    0.0 on every step except the one that runs the tests: 1.0 when every FAIL_TO_PASS and PASS_TO_PASS test
    passes, else 0.0. Partial credit (fraction of target tests passing) is in `info["tests"]["fraction"]`.
    The tests run only after every process of the episode has been stopped, the project tree restored from the
    task image, and changed code files and login variables checked against the healthy image; tampering scores
    0.0 with the reasons in `info["integrity"]["violations"]` (see SECURITY.md).

    ## Starting State
    A new container of the task's broken image (networking off unless the task needs it, no privileges,
    memory/CPU/pids limits), a shell in the task's workdir.

    ## Episode End
    Terminated: the agent sends `submit`, or the episode broke its own container (it stopped, was paused or
    killed, or went over its disk limit): then the reward is 0.0 and `info["error"]` says why. Truncated:
    `max_steps` commands were run (the tests run then too, and the reward counts). No agent action raises;
    calling `step` after the end raises `RuntimeError`; call `reset`.

    ## Arguments
    ```python
    gym.make("cligym/Repair-v0", task="tasks/generated/<id>", max_steps=None, command_timeout=None,
             output_cap=16384, max_observation_length=32768, hard=False, render_mode=None, warm_pool=0)
    ```
    - `task`: a task folder (or a loaded `Task`). Its images are built on first use if missing.
    - `max_steps` / `command_timeout`: override the task's `max_steps` / `timeouts.command`.
    - `hard`: show the instruction without its hint (the `.hard` variant).
    - `render_mode="ansi"`: `render()` returns the transcript so far.
    - `warm_pool=N`: keep N containers of the task's image started ahead of time (shared by the process's envs
      of that image): `reset` takes one (tens of milliseconds instead of a cold start) and a replacement
      starts in the background. Each is exactly a fresh start, never used before.

    `info` after a step: `exit_code`, `seconds`, `timed_out`, `truncated_output`, `shell_restarted`, `output`,
    `step`; after the tests: `tests` (resolved, fraction, counts, still failing), `test_seconds`, `integrity`
    (violations, what was restored); `error` when the episode ended abnormally.
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        task: str | Path | Task,
        *,
        max_steps: int | None = None,
        command_timeout: float | None = None,
        output_cap: int = 16_384,
        max_command_length: int = 8_192,
        max_observation_length: int = 32_768,
        hard: bool = False,
        render_mode: str | None = None,
        warm_pool: int = 0,
    ):
        self.task = task if isinstance(task, Task) else load_task(task)
        self.warm_pool = warm_pool
        spec = self.task.spec
        self.max_steps = max_steps or spec.max_steps
        self.command_timeout = command_timeout or spec.timeouts.command
        self.output_cap = output_cap
        self.hard = hard
        self.render_mode = render_mode
        self.max_observation_length = max(max_observation_length, output_cap + 256)
        self.action_space = text_space(max_command_length, min_length=1)
        self.observation_space = text_space(self.max_observation_length)
        self.max_command_length = max_command_length
        self._image: str | None = None
        self._session: ContainerSession | None = None
        self._since = 0.0
        self._steps = 0
        self._done = False
        self._transcript: list[str] = []

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        self._close_session(background=self.warm_pool > 0)
        if self._image is None:
            self._image = build_task_image(self.task)
        spec = self.task.spec
        options = {"network": spec.network, "workdir": spec.workdir, "output_cap": self.output_cap,
                   "default_timeout": self.command_timeout}  # fmt: skip
        if self.warm_pool > 0:  # a container started ahead of time and never used (see runtime/pool.py)
            self._session = shared_pool(self.warm_pool).take(self._image, **options)
        else:
            self._session = ContainerSession.start(self._image, **options)
        self._since = time.time()  # files changed after this were changed by the episode (see harness)
        self._steps, self._done = 0, False
        instruction = spec.prompt(hard=self.hard)
        self._transcript = [f"# task {spec.id}\n{instruction}\n"]
        return to_observation(instruction, self.max_observation_length), {
            "task_id": spec.id,
            "image": self._image,
        }

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._session is None or self._done:
            raise RuntimeError("the episode is over (or never started): call reset()")
        if action.strip() == SUBMIT:
            self._transcript.append("$ submit\n")
            return self._finish(terminated=True, info={"step": self._steps})
        self._steps += 1
        if len(action) > self.max_command_length:
            note = f"[cligym] command not run: {len(action)} characters (at most {self.max_command_length})\n"
            return self._observe(
                action, note, {"step": self._steps, "exit_code": None, "error": note.strip()}
            )
        try:
            result = self._session.run(action, timeout=self.command_timeout)
        except (CligymError, OSError, docker.errors.APIError, requests.exceptions.RequestException) as exc:
            return self._abort(action, f"the container could not run the command: {exc}")
        if getattr(result, "container_gone", False) or getattr(result, "disk_exceeded", False):
            why = "went over its disk limit" if getattr(result, "disk_exceeded", False) else "stopped"
            return self._abort(action, f"the container {why}", result.output)
        info = {
            "step": self._steps,
            "exit_code": result.exit_code,
            "seconds": result.seconds,
            "timed_out": result.timed_out,
            "truncated_output": result.truncated,
            "shell_restarted": result.shell_restarted,
            "output": result.output,
        }
        return self._observe(action, result.output, info)

    def _observe(self, action: str, output: str, info: dict) -> tuple[str, float, bool, bool, dict]:
        """A step's return: its output, and the tests when it was the last step allowed."""
        self._transcript.append(f"$ {action}\n{output}")
        observation = to_observation(output, self.max_observation_length)
        if self._steps >= self.max_steps:
            _, reward, _, _, info = self._finish(terminated=False, info=info)
            return observation, reward, False, True, info
        return observation, 0.0, False, False, info

    def _abort(self, action: str, why: str, output: str = "") -> tuple[str, float, bool, bool, dict]:
        """End the episode without tests: the agent broke its own container. Reward 0, `info["error"]`."""
        if self._session is not None:
            state = self._session.container_state()
            why += "" if state == "running" else f" (the container is {state})"
        text = f"{output}[cligym] episode over: {why}; reward 0.0\n"
        self._transcript.append(f"$ {action}\n{text}")
        self._done = True
        self._close_session()
        info = {
            "step": self._steps,
            "exit_code": None,
            "output": text,
            "error": why,
            "tests": None,
            "integrity": None,
        }
        return to_observation(text, self.max_observation_length), 0.0, True, False, info

    def _finish(self, *, terminated: bool, info: dict) -> tuple[str, float, bool, bool, dict]:
        """Score the episode's container (see `harness.score_container`) and end the episode."""
        assert self._session is not None and self._image is not None
        verdict = score_task_container(
            self.task, self._session.container, since=self._since, image=self._image
        )
        self._done = True
        self._close_session()  # the container was restarted for scoring: its shell is gone
        report = verdict.report
        score = report.score(self.task.spec.fail_to_pass, self.task.spec.pass_to_pass)
        reward = 1.0 if score.resolved and verdict.error is None and not verdict.violations else 0.0
        info = {
            **info,
            "tests": score.as_dict(),
            "test_seconds": report.seconds,
            "test_error": report.error,
            "integrity": verdict.info(),
        }
        if verdict.error:
            info["error"] = verdict.error
        counts = score.as_dict()
        if verdict.error or verdict.violations:
            summary = f"Tests not run: {report.error}. Reward 0.0."
        else:
            summary = (
                f"Tests: {'all target tests pass' if score.resolved else 'some target tests still fail'} "
                f"(FAIL_TO_PASS {counts['fail_to_pass']}, PASS_TO_PASS {counts['pass_to_pass']}). "
                f"Reward {reward:.1f}."
            )
        self._transcript.append(summary + "\n")
        return to_observation(summary, self.max_observation_length), reward, terminated, not terminated, info

    def render(self) -> str | None:
        if self.render_mode == "ansi":
            return "".join(self._transcript)
        return None

    def _close_session(self, background: bool = False) -> None:
        """Remove the episode's container; `background`: in a thread, so that `reset` does not wait for it."""
        if self._session is not None:
            session, self._session = self._session, None
            if background:
                threading.Thread(target=session.close, daemon=False).start()
            else:
                session.close()

    def close(self) -> None:
        self._close_session()
        super().close()
