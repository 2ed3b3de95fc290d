"""`cligym/Invert-v0`: environment inversion as a Gymnasium environment (break a healthy environment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym

from cligym_env.envs.text import text_space, to_observation
from cligym_env.gold import Gold, load_gold
from cligym_env.gold_image import build_gold, verify_gold
from cligym_env.runtime.session import ContainerSession
from cligym_env.runtime.sourcetree import SourceGuard
from cligym_env.testing import Outcome, run_tests

TEST, SUBMIT = "test", "submit"


class InvertEnv(gym.Env[str, str]):
    """
    ## Description
    The inversion half of CLI-Gym: an agent starts in a container of a healthy gold environment (every recorded
    test passes) and writes shell commands that break the *environment* — packages, libraries, executables,
    permissions, configuration — until target tests flip from pass to fail, without touching the project's own
    source. The successful commands are the would-be Dockerfile `RUN` lines of a repair task.

    ## Action Space
    `Text(max_length=max_command_length, charset=printable ASCII + whitespace)`: a shell command run in a
    persistent bash (as in `Repair-v0`), or `test` (run the tests, see which targets flipped) or `submit`
    (end the episode and score it).

    ## Observation Space
    `Text(max_length=max_observation_length, charset=printable ASCII + whitespace)`: after `reset`, a brief of the
    gold environment and the target tests; after a command, its output; after `test`/`submit`, the test results.

    ## Rewards
    0.0 except on `submit` (or when `max_steps` is reached): the fraction of target tests that now fail, in
    [0, 1]; -1.0 if any file under the project's source tree changed (checked with `SourceGuard`; changes the
    tests make are not counted).
    `test` costs nothing but time; its results are in `info` too.

    ## Starting State
    A fresh container of the gold image (networking off unless the gold needs it, no privileges, limits).

    ## Episode End
    Terminated on `submit`; truncated after `max_steps` commands (scored the same way). `step` after the end
    raises `RuntimeError`.

    ## Arguments
    ```python
    gym.make("cligym/Invert-v0", gold="click", targets=None, max_steps=30, command_timeout=120,
             output_cap=16384, render_mode=None)
    ```
    - `gold`: a gold name or folder; its image is built (and verified) on first use.
    - `targets`: test ids to aim at (default: every test the gold's record says passes).

    `info`: `exit_code`, `seconds`, `timed_out` after a command; `flipped`, `n_targets`, `touched_source` after
    `test`/`submit`; always `dockerfile_lines` (the commands that exited 0, in order).
    """

    metadata = {"render_modes": ["ansi"]}

    def __init__(
        self,
        gold: str | Path | Gold,
        *,
        targets: list[str] | None = None,
        max_steps: int = 30,
        command_timeout: float = 120.0,
        output_cap: int = 16_384,
        max_command_length: int = 8_192,
        max_observation_length: int = 32_768,
        render_mode: str | None = None,
    ):
        self.gold = gold if isinstance(gold, Gold) else load_gold(gold)
        self.max_steps = max_steps
        self.command_timeout = command_timeout
        self.output_cap = output_cap
        self.render_mode = render_mode
        self.max_observation_length = max(max_observation_length, output_cap + 256)
        self.action_space = text_space(max_command_length, min_length=1)
        self.observation_space = text_space(self.max_observation_length)
        self._targets = targets
        self._image: str | None = None
        self._session: ContainerSession | None = None
        self._steps, self._done = 0, False
        self._lines: list[str] = []
        self._transcript: list[str] = []

    def _prepare(self) -> None:
        self._image, _ = build_gold(self.gold)
        record = self.gold.record()
        if record is None or record.image != self._image:
            record = verify_gold(self.gold)
        self.targets = list(self._targets or record.passing)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[str, dict]:
        super().reset(seed=seed)
        self.close()
        if self._image is None:
            self._prepare()
        spec = self.gold.spec
        self._session = ContainerSession.start(
            self._image, network=spec.network, workdir=spec.workdir, output_cap=self.output_cap,
            default_timeout=self.command_timeout,
        )  # fmt: skip
        self._steps, self._done, self._lines = 0, False, []
        self._guard, self._touched = SourceGuard(self._session.container, spec.workdir), set()
        brief = (
            f"Healthy environment: {spec.name} {spec.version} in {spec.workdir} ({spec.description}).\n"
            f"Its tests (`{spec.test_command}`) pass. Break the environment, not the project's files, so that the "
            f"target tests fail. {len(self.targets)} targets, e.g.:\n"
            + "\n".join(self.targets[:10])
            + "\nCommands: any shell command; `test` runs the tests; `submit` ends the episode."
        )
        self._transcript = [brief + "\n"]
        return to_observation(brief, self.max_observation_length), {"gold": spec.name, "image": self._image}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict]:
        if self._session is None or self._done:
            raise RuntimeError("the episode is over (or never started): call reset()")
        command = action.strip()
        self._transcript.append(f"$ {action}\n")
        if command in (TEST, SUBMIT):
            observation, score, info = self._score()
            if command == TEST:
                return observation, 0.0, False, False, info
            self._done = True
            return observation, score, True, False, info
        self._steps += 1
        result = self._session.run(action, timeout=self.command_timeout)
        if result.exit_code == 0:
            self._lines.append(action)
        self._transcript.append(result.output)
        info = {"exit_code": result.exit_code, "seconds": result.seconds, "timed_out": result.timed_out,
                "dockerfile_lines": list(self._lines), "output": result.output}  # fmt: skip
        observation = to_observation(result.output, self.max_observation_length)
        if self._steps >= self.max_steps:
            _, score, score_info = self._score()
            self._done = True
            return observation, score, False, True, {**info, **score_info}
        return observation, 0.0, False, False, info

    def _score(self) -> tuple[str, float, dict]:
        """Run the tests in the episode's container; count flipped targets; check the source is untouched."""
        assert self._session is not None
        spec = self.gold.spec
        self._touched.update(self._guard.changes())
        touched = sorted(self._touched)
        report = run_tests(self._session.container, spec.test_command, results_path=spec.results.path,
                           results_format=spec.results.format, workdir=spec.workdir, timeout=spec.test_timeout)  # fmt: skip
        self._guard.snapshot()  # what the tests wrote is theirs, not the agent's
        self._session.new_shell()  # the test run stopped every process in the container, the shell too
        flipped = [t for t in self.targets if report.status_of(t) is not Outcome.PASSED]
        score = -1.0 if touched else len(flipped) / max(len(self.targets), 1)
        text = (f"{len(flipped)} of {len(self.targets)} target tests fail now."
                + (f" The project's source changed ({', '.join(touched[:3])}): that is not allowed." if touched else "")
                + ("\n" + "\n".join(flipped[:15]) if flipped else ""))  # fmt: skip
        self._transcript.append(text + "\n")
        info = {"flipped": flipped, "n_targets": len(self.targets), "touched_source": touched,
                "dockerfile_lines": list(self._lines), "score": score}  # fmt: skip
        return to_observation(text, self.max_observation_length), score, info

    def render(self) -> str | None:
        return "".join(self._transcript) if self.render_mode == "ansi" else None

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
