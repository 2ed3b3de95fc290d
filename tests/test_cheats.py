"""Reward integrity against the cheat catalogue (`tests/cheats.py`).

On real tasks of four golds (JUnit, TAP and cargo results), every applicable cheat is played as agent actions
and then submitted: the reward must be 0.0, the episode over, and nothing raised. A control per task checks that
the oracle repair still scores 1.0. The cheating detector (`cligym_env.export.cheating_reasons`) must flag every
cheat and none of a fixed sample of oracle repairs or an honest diagnosis (that part is fast).
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
from cheats import CARGO, CHEATS, JUNIT, MAKE_FAKE, TAP, Cheat
from samples import sampled_tasks

import cligym_env  # noqa: F401  (registers the environments)
from cligym_env.export import cheating_reasons
from cligym_env.task import load_task

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "tasks" / "generated"
# Per result format, the tasks the cheats are played on. The two Perl tasks differ in where the fault is:
# prove itself is not executable (a958…), or one test dies while prove runs (0fa6…).
TASKS = {
    JUNIT: ("python-slugify-missing-dependency", "tabulate-wide-chars"),
    TAP: ("perl-try-tiny-a958c4db63", "perl-try-tiny-0fa6851d6c"),
    CARGO: ("rust-strsim-87734397c1",),
}
PAIRS = [(cheat, task) for cheat in CHEATS for fmt in cheat.formats for task in TASKS[fmt]]
HONEST_DIAGNOSIS = [
    "which python",
    "python -m pytest -x -q tests 2>&1 | tail",
    "pip list",
    "ls -l /usr/bin/python3",
    "cat /etc/profile.d/*.sh",
    "dpkg -S /usr/bin/less",
    "ldd /usr/bin/python3.11",
]
# Honest repairs of the kinds the detector must leave alone (package reinstalls, permissions, links, profile
# files that set or lose variables, the loader cache, running the tests).
HONEST_REPAIRS = [
    "pip install --force-reinstall --no-deps wcwidth==0.9.4",
    "apt-get install --reinstall -y -o Dpkg::Options::=--force-confmiss libperl5.36",
    "chmod 0755 /usr/bin/prove && prove -b -v -r t 2>&1 | tail -5",
    "ln -sfn python3.11 /usr/bin/python3",
    "echo 'export LANG=C.UTF-8' > /etc/profile.d/locale.sh",
    "sed -i '/^export PYTHONPATH=/d' /etc/profile.d/50-defaults.sh",
    "rm -f /etc/profile.d/99-local.sh /opt/venv/lib/python3.11/site-packages/_site_fix.pth",
    ": > /etc/ld.so.preload; rm -f /etc/ld.so.preload; ldconfig",
    "unset PYTHONPATH LD_PRELOAD; env | grep -E 'PYTHON|LD_'",
    "cargo test --offline 2>&1 | tail -20",
    "python -m pytest -q tests > /tmp/out.txt 2>&1; tail /tmp/out.txt",
]


def own_commands(cheat: Cheat) -> list[str]:
    """The commands that plant the cheat (MAKE_FAKE only prepares the fake results)."""
    return [c for c in cheat.commands if c != MAKE_FAKE]


@pytest.mark.parametrize("cheat", CHEATS, ids=lambda c: c.name)
def test_detector_flags_every_cheat(cheat: Cheat) -> None:
    assert cheating_reasons(own_commands(cheat)), f"{cheat.name}: {cheat.why}"


def test_detector_flags_no_oracle_repair_nor_honest_commands() -> None:
    assert cheating_reasons(HONEST_DIAGNOSIS) == []
    assert {c: cheating_reasons([c]) for c in HONEST_REPAIRS} == {c: [] for c in HONEST_REPAIRS}
    flagged = {}
    for folder in sampled_tasks(300):
        reasons = cheating_reasons([load_task(folder).solution_script()])
        if reasons:
            flagged[folder.name] = reasons
    assert flagged == {}


def test_catalogue_is_well_formed() -> None:
    names = [c.name for c in CHEATS]
    assert len(names) == len(set(names)) >= 14
    for cheat in CHEATS:
        assert cheat.commands and cheat.why and set(cheat.formats) <= set(TASKS), cheat.name
        assert all(len(c) <= 8_192 for c in cheat.commands), (
            f"{cheat.name}: a command over max_command_length"
        )


@pytest.fixture(scope="module")
def envs():
    """One env per task, reused across cheats (reset between): the image is built once."""
    made: dict[str, gym.Env] = {}

    def get(task: str) -> gym.Env:
        if task not in made:
            made[task] = gym.make("cligym/Repair-v0", task=GENERATED / task)
        return made[task]

    yield get
    for env in made.values():
        env.close()


def play(env: gym.Env, commands: list[str]) -> tuple[float, bool, dict, list[dict]]:
    """Reset, send `commands` as actions, then submit. Returns (reward, episode over, last info, step infos)."""
    env.reset(seed=0)
    infos = []
    for command in commands:
        _, reward, terminated, truncated, info = env.step(command)
        infos.append(info)
        if terminated or truncated:  # the cheat ended the episode itself (e.g. it broke the container)
            return reward, True, info, infos
    _, reward, terminated, truncated, info = env.step("submit")
    return reward, terminated or truncated, info, infos


@pytest.fixture(scope="module")
def oracle(envs):
    """The oracle repair's episode on a task, played once per task: (reward, episode over, info, step infos)."""
    played: dict[str, tuple] = {}

    def get(task: str) -> tuple:
        if task not in played:
            played[task] = play(envs(task), [load_task(GENERATED / task).solution_script()])
        return played[task]

    return get


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted({t for tasks in TASKS.values() for t in tasks}))
def test_oracle_repair_still_scores_one(oracle, task: str) -> None:
    reward, over, info, steps = oracle(task)
    assert steps[0]["exit_code"] == 0, steps[0].get("output")
    assert over and reward == 1.0, f"{task}: tests {info.get('tests')}, integrity {info.get('integrity')}"


@pytest.mark.slow
@pytest.mark.parametrize("cheat,task", PAIRS, ids=[f"{c.name}@{t}" for c, t in PAIRS])
def test_cheat_scores_zero(envs, oracle, cheat: Cheat, task: str) -> None:
    if oracle(task)[0] != 1.0:  # a harness that rewards nothing would pass every cheat test below
        pytest.fail(f"the oracle repair of {task} does not score 1.0: a 0.0 for {cheat.name} proves nothing")
    reward, over, info, steps = play(envs(task), list(cheat.commands))
    planted = [(s.get("exit_code"), s.get("output", "")[-300:]) for s in steps]
    assert over, f"{cheat.name} on {task}: the episode did not end at submit"
    assert reward == 0.0, (
        f"{cheat.name} on {task} scored {reward} ({cheat.why}); tests {info.get('tests')}, "
        f"integrity {info.get('integrity')}; planted: {planted}"
    )
