"""The scoring harness on real containers: trusted tools, private results, restores and checks (SECURITY.md)."""

from __future__ import annotations

import time
from pathlib import Path

import docker
import gymnasium as gym
import pytest

import cligym_env  # noqa: F401  (registers the environments)
from cligym_env.gold import load_gold
from cligym_env.harness import check_environment, score_container
from cligym_env.harness.changes import Findings, restore_workdir, scan_changes
from cligym_env.harness.reference import hash_files, workdir_archive
from cligym_env.runtime.containers import exec_once, remove_container, start_container
from cligym_env.runtime.toolkit import kill_all_processes, run_tool
from cligym_env.task import load_task
from cligym_env.task_image import build_task_image, gold_image_of
from cligym_env.testing import run_tests
from cligym_env.testing.login import LoginEnvironment, capture_login_environment
from cligym_env.testing.report import TestReport

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
TASK = ROOT / "tasks" / "generated" / "python-slugify-missing-dependency"


@pytest.fixture(scope="module")
def slugify():
    """(task, its broken image, the gold image)."""
    task = load_task(TASK)
    return task, build_task_image(task), gold_image_of(task.spec.gold)


@pytest.fixture
def container(slugify):
    task, image, _ = slugify
    started = time.time()
    c = start_container(image, workdir=task.spec.workdir)
    c.cligym_started = started
    yield c
    remove_container(c)


def test_reporting_needs_no_tee_and_no_tmp() -> None:
    """With `tee` unusable and /tmp a file, TAP results still arrive: the harness keeps the output itself."""
    gold = load_gold("perl-try-tiny")
    c = start_container(gold_image_of(gold.name), workdir=gold.spec.workdir)
    try:
        exec_once(c, "chmod 000 /usr/bin/tee && rm -rf /tmp && touch /tmp", timeout=30)
        report = run_tests(c, gold.spec.test_command, results_path=gold.spec.results.path,
                           results_format="tap", workdir=gold.spec.workdir, timeout=300)  # fmt: skip
        assert report.error is None and len(report.passed) > 50, report.summary()
    finally:
        remove_container(c)


def test_login_environment_is_captured_as_data(container) -> None:
    exec_once(
        container,
        "printf '%s\\n' 'export CLIGYM_X=1' 'python() { echo fake; }' 'export -f python' 'ulimit -n 64' "
        "'umask 0027' > /etc/profile.d/zz.sh",
        timeout=30,
    )
    env = capture_login_environment(container, "/testbed")
    assert env.variables["CLIGYM_X"] == "1"
    assert "python" in env.functions and "BASH_FUNC_python%%" in env.variables
    assert env.limits["Max open files"] == "64" and env.umask == "0027"
    probe = run_tool(container, "", timeout=30, argv=None)  # the harness shell itself has none of it
    assert probe.exit_code == 0


def test_kill_all_processes_leaves_only_init(container) -> None:
    exec_once(container, "setsid bash -c 'while :; do sleep 0.1; done' >/dev/null 2>&1 < /dev/null &"
                         " (sleep 300 &) ; nohup sleep 400 >/dev/null 2>&1 &", timeout=30)  # fmt: skip
    kill_all_processes(container)
    listing = run_tool(container, "for s in /proc/[0-9]*/comm; do cat $s; done", timeout=30)
    names = listing.output.decode().split()
    assert names.count("sleep") == 1, names  # the keep-alive `sleep infinity` under docker-init


def test_restore_workdir_puts_back_what_the_episode_changed(container, slugify) -> None:
    task, image, _ = slugify
    exec_once(
        container,
        "cd /testbed && echo 'def test_x(): pass' > tests/conftest.py && echo '# edited' >> tests/test_slugify.py"
        " && rm -rf slugify && mkdir -p extra/deep && echo hi > extra/deep/f && chmod 000 README.md",
        timeout=30,
    )
    changes, _ = scan_changes(container, container.cligym_started, time.time())
    findings = Findings()
    restore_workdir(container, changes, image, "/testbed", findings)
    assert {"/testbed/tests/conftest.py", "/testbed/extra", "/testbed/slugify"} <= set(findings.restored)
    listing = run_tool(container, "cd /testbed && find . | sort", timeout=30).output.decode().split()
    import tarfile

    with tarfile.open(workdir_archive(image, "/testbed")) as tar:
        expected = sorted("." + m.name[len("testbed") :] for m in tar.getmembers())
    assert listing == expected
    digest = hash_files(container, ["/testbed/tests/test_slugify.py", "/testbed/README.md"])
    stat = run_tool(container, "stat -c %a /testbed/README.md", timeout=30).output.decode().strip()
    assert stat != "0" and digest["/testbed/README.md"][0] is not None


def test_code_files_must_be_the_gold_files(container, slugify) -> None:
    task, image, gold_image = slugify
    exec_once(container, task.solution_script(), timeout=300, workdir="/testbed")
    verdict = score_container(
        task, container, since=container.cligym_started, image=image, gold_image=gold_image
    )
    assert verdict.violations == [] and verdict.error is None
    assert verdict.report.score(task.spec.fail_to_pass, task.spec.pass_to_pass).resolved


def test_wrapper_hook_and_bytecode_are_caught(container, slugify) -> None:
    task, image, gold_image = slugify
    exec_once(
        container,
        "printf '#!/bin/sh\\nexec /usr/bin/python3 \"$@\"\\n' > /usr/local/bin/python && chmod +x /usr/local/bin/python"
        " && echo 'import os' > /opt/venv/lib/python3.11/site-packages/zz_hook.pth"
        " && mkdir -p /usr/lib/python3.11/__pycache__ && echo junk > /usr/lib/python3.11/__pycache__/zz.cpython-311.pyc",
        timeout=30,
    )
    verdict = score_container(
        task, container, since=container.cligym_started, image=image, gold_image=gold_image
    )
    flagged = " ".join(verdict.violations)
    assert "/usr/local/bin/python" in flagged and "zz_hook.pth" in flagged
    assert verdict.findings.removed_bytecode >= 1
    assert verdict.report.error and not verdict.report.outcomes  # tampering: the tests are not even run


def test_environment_check_allows_healthy_and_broken_values_only() -> None:
    healthy = LoginEnvironment({"PATH": "/usr/bin", "LANG": "C.UTF-8"})
    broken = LoginEnvironment({"PATH": "/usr/bin", "PYTHONPATH": "/stubs"})
    assert check_environment(LoginEnvironment({"PATH": "/usr/bin"}), healthy, broken) == []
    assert (
        check_environment(LoginEnvironment({"PATH": "/usr/bin", "PYTHONPATH": "/stubs"}), healthy, broken)
        == []
    )
    assert (
        check_environment(LoginEnvironment({"PATH": "/usr/bin", "LANG": "fr_FR.UTF-8"}), healthy, broken)
        == []
    )
    bad = check_environment(
        LoginEnvironment({"PATH": "/x:/usr/bin", "PYTEST_ADDOPTS": "-p x"}), healthy, broken
    )
    assert len(bad) == 2 and "PATH" in bad[0] and "PYTEST_ADDOPTS" in bad[1]
    functions = check_environment(
        LoginEnvironment({"PATH": "/usr/bin"}, functions=["python"]), healthy, broken
    )
    assert functions and "python" in functions[0]


def test_claims_success_spots_runs_that_pass_but_report_nothing() -> None:
    assert TestReport(output_tail="....\n139 passed, 1 skipped in 2.1s").claims_success()
    assert TestReport(output_tail="All tests successful.\nResult: PASS").claims_success()
    assert not TestReport(output_tail="2 failed, 137 passed").claims_success()
    assert not TestReport(output_tail="bash: python: command not found").claims_success()


def make(**kwargs) -> gym.Env:
    return gym.make("cligym/Repair-v0", task=TASK, disable_env_checker=True, **kwargs)


def test_killing_init_ends_the_episode_cleanly_and_reset_works() -> None:
    env = make()
    try:
        env.reset(seed=0)
        _, reward, terminated, _, info = env.step("kill 1; sleep 2")
        if not terminated:  # the shell may report first; the next step or submit ends it
            _, reward, terminated, _, info = env.step("submit")
        assert terminated and reward == 0.0 and info.get("error"), info
        env.reset(seed=0)
        _, reward, terminated, _, info = env.step(load_task(TASK).solution_script())
        _, reward, terminated, _, info = env.step("submit")
        assert reward == 1.0, info
    finally:
        env.close()


def test_pausing_the_container_from_outside_ends_the_episode() -> None:
    env = make(command_timeout=5)
    try:
        env.reset(seed=0)
        container = env.unwrapped._session.container
        docker.from_env().api.pause(container.id)
        _, reward, terminated, truncated, info = env.step("echo hi")
        if not terminated:
            _, reward, terminated, _, info = env.step("submit")
        assert terminated and reward == 0.0 and "paused" in str(info.get("error")), info
    finally:
        env.close()


def test_a_squatted_old_results_path_does_not_matter() -> None:
    env = make()
    try:
        env.reset(seed=0)
        env.step("mkdir -p /tmp/cligym-results.xml && truncate -s 500M /tmp/big.xml")
        env.step(load_task(TASK).solution_script())
        _, reward, _, _, info = env.step("submit")
        assert reward == 1.0, info
    finally:
        env.close()


def test_too_long_a_command_is_refused_not_run() -> None:
    env = make(max_command_length=100)
    try:
        env.reset(seed=0)
        observation, reward, terminated, _, info = env.step("echo " + "x" * 200)
        assert "not run" in observation and not terminated and info["exit_code"] is None
    finally:
        env.close()
