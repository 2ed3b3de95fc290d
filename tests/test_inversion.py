"""Environment inversion end to end on real golds, in real containers."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

import cligym_env  # noqa: F401  (registers the environments)
from cligym_env.gold import load_gold
from cligym_env.inversion import validate
from cligym_env.inversion.families import ALL_FAMILIES, BY_NAME
from cligym_env.inversion.families.base import Fault, FaultFamily
from cligym_env.inversion.feedback import RECENT_SINGLES, Feedback, fault_to_dict
from cligym_env.inversion.generate import Budget, Generator
from cligym_env.inversion.heuristic import COMPOSITE_SHARE, MAX_COMPOSITE_SHARE, HeuristicInverter
from cligym_env.inversion.pipeline import GoldWorkspace, Proposal, Rejection, run_attempt
from cligym_env.inversion.statement import leaks, write_statement
from cligym_env.inversion.validate import validate_task
from cligym_env.runtime.containers import (
    GROUP_LABEL,
    docker_client,
    exec_once,
    gc,
    remove_container,
    start_container,
)
from cligym_env.task import Provenance, list_tasks, outcome_key
from cligym_env.task_image import build_task_image
from cligym_env.testing import TestReport
from tests.llm_server import ScriptedChatServer, turns

ROOT = Path(__file__).resolve().parent.parent


def test_families_cover_the_papers_categories() -> None:
    assert len(ALL_FAMILIES) >= 20
    assert len({f.name for f in ALL_FAMILIES}) == len(ALL_FAMILIES)
    assert len({f.category for f in ALL_FAMILIES}) >= 6
    assert all(f.direction and f.name == f.name.lower() for f in ALL_FAMILIES)


def test_leak_check_and_budget_parsing() -> None:
    assert leaks("Reinstall TEXT-UNIDECODE please", ("text-unidecode", "/usr/bin/less")) == ["text-unidecode"]
    assert leaks("tests fail with ImportError", ("text-unidecode",)) == []
    assert Budget.parse("500").attempts == 500 and Budget.parse("500").minutes is None
    assert Budget.parse("30m").minutes == 30 and Budget.parse("30m").attempts is None
    assert Budget.parse("2h,10").attempts == 10
    assert Budget.parse("2h").minutes == 120


def test_template_statement_counts_and_never_names_the_fix() -> None:
    fault = Fault("startup-hook-setting", "infrastructure", "recursion-limit", ("echo x > /s/zz.pth",),
                  ("rm -f /s/zz.pth",), "Deep recursion fails.", ("/s/zz.pth", "zz.pth", "setrecursionlimit"))  # fmt: skip
    report = TestReport(output_tail="E   RecursionError: maximum recursion depth exceeded\n")
    mentioned = 0
    for seed in range(12):
        one, hint = write_statement("jinja2", "/testbed", "python -m pytest -q tests", [fault], report,
                                    ["tests/test_a.py::test_deep"], 900, random.Random(seed))  # fmt: skip
        assert re.search(r"\b1\b", one) and "900" in one and "tests/test_a.py::test_deep" in one
        assert hint.startswith(fault.symptom) and not leaks(one + hint, fault.leak_terms)
        mentioned += "RecursionError" in one
        many, _ = write_statement("jinja2", "/testbed", "python -m pytest -q tests", [fault], report,
                                  ["tests/test_a.py::test_deep", "tests/test_b.py::test_x"], 900, random.Random(seed))  # fmt: skip
        assert re.search(r"\b2\b", many) and "900" in many
    assert mentioned >= 6, "the real error is quoted in most statements"


@pytest.mark.slow
def test_generate_makes_exactly_n_tasks_with_more_workers_than_tasks_left(tmp_path: Path) -> None:
    """Two workers, one task wanted: only one attempt is in flight, so two successes cannot both be written."""
    families = (BY_NAME["uninstalled-python-dependency"], BY_NAME["emptied-python-module-file"])
    generator = Generator([load_gold("python-slugify")], tmp_path, HeuristicInverter(families), seed=5)
    summary = generator.run(1, workers=2, budget=Budget(attempts=4))
    assert summary.accepted == 1 and len(list_tasks(tmp_path)) == 1, summary.as_dict()


@pytest.mark.slow
def test_heuristic_generate_validate_and_solve(tmp_path: Path) -> None:
    inverter = HeuristicInverter((BY_NAME["uninstalled-python-dependency"],))
    summary = Generator([load_gold("python-slugify")], tmp_path, inverter, seed=3).run(
        1, budget=Budget(attempts=3)
    )
    assert summary.accepted == 1, summary.as_dict()
    (task,) = list_tasks(tmp_path)
    assert task.spec.signature == "uninstalled-python-dependency:text-unidecode"
    assert task.spec.fail_to_pass and "text-unidecode" not in task.spec.instruction.lower()
    assert task.spec.provenance.inverter == "heuristic" and task.spec.provenance.seed is not None
    assert validate_task(task).ok
    env = gym.make("cligym/Repair-v0", task=task)
    try:
        env.reset(seed=0)
        env.step(task.solution_script())
        assert env.step("submit")[1] == 1.0
    finally:
        env.close()
    journal = [
        json.loads(line) for line in (tmp_path / ".generate" / "journal.jsonl").read_text().splitlines()
    ]
    assert [e["status"] for e in journal] == ["accepted"] and journal[0]["task_id"] == task.id


# What each startup hook changes, as Python sees it in a login shell of the broken container.
HOOK_EFFECTS = {
    "recursion-limit": "sys.getrecursionlimit() == 220",
    "int-str-digits": "sys.get_int_max_str_digits() == 640",
    "warnings-filter": "warnings.filters[0][0] == 'error'",
    "decimal-precision": "decimal.getcontext().prec == 6",
    "decimal-inexact-trap": "decimal.getcontext().traps[decimal.Inexact]",
    "csv-field-limit": "csv.field_size_limit() == 64",
    "socket-timeout": "socket.getdefaulttimeout() == 0.0005",
    "logging-disabled": "logging.root.manager.disable == logging.CRITICAL",
    "tempfile-dir": "tempfile.gettempdir() == '/var/tmp/.scratch'",
}


@pytest.mark.slow
def test_startup_hooks_change_one_setting_and_their_repair_undoes_it() -> None:
    family = BY_NAME["startup-hook-setting"]
    assert set(HOOK_EFFECTS) == set(family.HOOKS)
    ws = GoldWorkspace(load_gold("python-slugify"))
    container = start_container(ws.image, workdir=ws.gold.spec.workdir)
    try:
        assert set(family.targets(ws.context)) <= set(HOOK_EFFECTS)
        modules = "sys, warnings, decimal, csv, socket, logging, tempfile"
        for hook, effect in HOOK_EFFECTS.items():
            fault = family.fault(ws.context, hook, random.Random(hook))
            assert fault.signature == f"startup-hook-setting:{hook}" and fault.leak_terms
            assert not leaks(fault.symptom, fault.leak_terms), hook  # the hint is a symptom, not the fix
            check = f"python -c {shlex.quote(f'import {modules}; print({effect})')}"
            for commands, expected in ((fault.break_commands, "True"), (fault.repair_commands, "False")):
                assert exec_once(container, " && ".join(commands), timeout=60).exit_code == 0
                assert exec_once(container, check, timeout=60).output.strip() == expected, (hook, commands)
    finally:
        remove_container(container)
        ws.close()


@pytest.mark.slow
def test_a_module_only_some_tests_import_breaks_only_those_tests(tmp_path: Path) -> None:
    ws = GoldWorkspace(load_gold("click"))
    try:
        scoped = ws.probe.test_scoped
        # click (code or tests) imports optparse, getpass and webbrowser inside functions only;
        # os, sys and re at module level (a failed import there stops pytest's whole run): not candidates.
        assert {"optparse", "getpass", "webbrowser"} <= set(scoped), scoped
        assert not {"os", "sys", "re", "click", "pytest"} & set(scoped)
        family = BY_NAME["removed-test-scoped-stdlib-module"]
        targets = family.targets(ws.context)
        assert f"{ws.probe.stdlib}/optparse.py" in targets
        assert not set(targets) & set(BY_NAME["removed-stdlib-module"].targets(ws.context))
        fault = family.fault(ws.context, f"{ws.probe.stdlib}/optparse.py", random.Random(0))
        proposal = Proposal.from_faults([fault], "click")
        task = run_attempt(
            ws, proposal, tmp_path, "click-optparse", Provenance(inverter="test"), random.Random(0)
        )
        assert 0 < len(task.spec.fail_to_pass) < len(ws.record.passing) // 10, len(task.spec.fail_to_pass)
        assert len(task.spec.pass_to_pass) == len(ws.record.passing) - len(task.spec.fail_to_pass)
    finally:
        ws.close()


class EditsProjectSource(FaultFamily):
    name = "edits-project-source"
    category = "other"
    direction = "(test only) change the project's own code"

    def targets(self, ctx):
        return ["slugify/__init__.py"]

    def fault(self, ctx, target, rng):
        path = f"{ctx.probe.workdir}/{target}"
        return self.make(target, [f"echo 'raise ImportError' > {path}"], ["true"], "imports fail", [])


@pytest.mark.slow
def test_breaking_the_project_source_is_rejected(tmp_path: Path) -> None:
    ws = GoldWorkspace(load_gold("python-slugify"))
    try:
        fault = EditsProjectSource().fault(ws.context, "slugify/__init__.py", random.Random(0))
        proposal = Proposal.from_faults([fault], "python-slugify")
        with pytest.raises(Rejection) as info:
            run_attempt(ws, proposal, tmp_path, "edit-source", Provenance(inverter="test"), random.Random(0))
        assert info.value.reason == "touched-source" and "/testbed/slugify/__init__.py" in info.value.detail
        assert list_tasks(tmp_path) == []
    finally:
        ws.close()


def _generate(out: Path, n: int, process_id: str) -> subprocess.Popen:
    families = ["uninstalled-python-dependency", "removed-dist-metadata", "deleted-python-module-file"]
    args = [sys.executable, "-m", "cligym_env.cli", "generate", "--gold", "python-slugify", "--n", str(n),
            "--out", str(out), "--budget", "12", *[a for f in families for a in ("--family", f)]]  # fmt: skip
    env = os.environ | {"CLIGYM_PROCESS_ID": process_id}
    return subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
    )


@pytest.mark.slow
def test_killed_generate_resumes_without_loss_or_duplicates(tmp_path: Path) -> None:
    journal = tmp_path / ".generate" / "journal.jsonl"
    killed_id = f"killed-{secrets.token_hex(4)}"
    proc = _generate(tmp_path, 2, killed_id)
    deadline = time.monotonic() + 400
    while time.monotonic() < deadline and not (journal.exists() and journal.read_text().strip()):
        time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)  # mid-run: the next attempt is under way
    proc.wait()
    first = journal.read_text().splitlines()
    assert first, "the first run finished no attempt before it was killed"
    # The killed run was mid-attempt; its watchdog removes what it left behind (CLIGYM_PROCESS_ID is its group).
    client = docker_client()
    deadline = time.monotonic() + 15
    while client.containers.list(all=True, filters={"label": f"{GROUP_LABEL}={killed_id}"}, sparse=True):
        assert time.monotonic() < deadline, "the killed run's containers outlived it by 15 s"
        time.sleep(0.5)
    rerun_id = f"rerun-{secrets.token_hex(4)}"
    rerun = _generate(tmp_path, 2, rerun_id)
    assert rerun.wait(timeout=900) == 0, rerun.stderr.read()
    entries = [json.loads(line) for line in journal.read_text().splitlines()]
    keys = [(e["gold"], e["index"]) for e in entries]
    assert len(keys) == len(set(keys)), "an attempt was journalled twice"
    tasks = list_tasks(tmp_path)
    accepted = {e["task_id"] for e in entries if e["status"] == "accepted"}
    assert {t.id for t in tasks} == accepted
    signatures = [t.spec.signature for t in tasks]
    assert len(signatures) == len(set(signatures)) and len(tasks) >= min(3, len(tasks))
    assert not list(tmp_path.glob(".*.partial"))
    # A run that ends removes its own containers. Only this test's processes are cleaned: an unscoped
    # `cligym gc` here would remove the containers of any other cligym process on this daemon.
    assert gc(labels={GROUP_LABEL: rerun_id}) == 0, "the finished rerun left containers behind"


def _solving_script(messages: list[dict], number: int) -> str | int:
    step = turns(messages)
    if step == 0:
        return "Remove the transliteration backend.\n```bash\npip uninstall -y text-unidecode\n```"
    if step == 1:
        return "Check.\n```bash\nrun_tests\n```"
    final = {"commands": ["pip uninstall -y text-unidecode"], "title": "transliteration backend gone",
             "category": "dependencies-runtime", "symptom": "Non-ASCII text cannot be slugified.",
             "recovery": "pip install text-unidecode==1.3"}  # fmt: skip
    return "Done.\n```bash\nfinish\n```\n```json\n" + json.dumps(final) + "\n```"


def _malformed_then_errors(messages: list[dict], number: int) -> str | int:
    return {
        1: "I refuse to use code blocks.",
        2: "still no block",
        3: "```bash\nfinish\n```\nno json here",
    }.get(number, 500)


@pytest.mark.slow
def test_llm_inverter_against_a_scripted_openai_server(tmp_path: Path) -> None:
    from cligym_env.inversion.llm_inverter import LLMInverter
    from cligym_env.inversion.statement import LLMStatementWriter

    with ScriptedChatServer(_solving_script) as server:
        inverter = LLMInverter.from_options(model="scripted", base_url=server.base_url, backoff_seconds=0.01)
        writer = LLMStatementWriter(inverter.policy.client, "scripted")
        generator = Generator([load_gold("python-slugify")], tmp_path / "ok", inverter, writer=writer)
        summary = generator.run(1, budget=Budget(attempts=1))
    assert summary.accepted == 1, summary.as_dict()
    (task,) = list_tasks(tmp_path / "ok")
    # The scripted model answers the statement prompt with its first reply, which names the fix: template wins.
    assert writer.fallbacks == 1 and "text-unidecode" not in task.spec.instruction
    assert task.spec.fault_family == "llm-dependencies-runtime" and task.spec.provenance.model == "scripted"
    assert "pip install text-unidecode==1.3" in task.solution_script()
    # The inverter's conversation is kept beside the journal, keyed like its entry.
    (saved,) = [json.loads(line) for line in (tmp_path / "ok" / ".generate" / "conversations.jsonl").open()]
    assert (saved["gold"], saved["status"], saved["task_id"]) == ("python-slugify", "accepted", task.id)
    assert saved["messages"][0]["role"] == "system" and "finish" in saved["messages"][-1]["content"]
    with ScriptedChatServer(_malformed_then_errors) as server:
        inverter = LLMInverter.from_options(
            model="scripted", base_url=server.base_url, backoff_seconds=0.01, api_retries=1, format_retries=2
        )
        generator = Generator([load_gold("python-slugify")], tmp_path / "bad", inverter)
        summary = generator.run(5, budget=Budget(attempts=2))
    assert summary.accepted == 0 and summary.attempts == 2
    assert set(summary.reasons) <= {"llm-malformed", "llm-error"} and sum(summary.reasons.values()) == 2, (
        summary.reasons
    )
    conversations = [
        json.loads(line) for line in (tmp_path / "bad" / ".generate" / "conversations.jsonl").open()
    ]
    reminders = [
        m["content"] for c in conversations for m in c["messages"] if m["content"].startswith("Your reply")
    ]
    assert reminders and all("`finish`" in r and "`submit`" not in r for r in reminders), conversations


@pytest.mark.slow
def test_invert_env_check_env_and_scoring() -> None:
    env = gym.make(
        "cligym/Invert-v0", gold="python-slugify", max_steps=4, command_timeout=10, disable_env_checker=True
    )
    check_env(env.unwrapped, skip_render_check=True)
    try:
        env.reset(seed=0)
        _, reward, *_, info = env.step("pip uninstall -y text-unidecode")
        assert reward == 0.0 and info["dockerfile_lines"] == ["pip uninstall -y text-unidecode"]
        observation, reward, terminated, _, info = env.step("submit")
        assert terminated and 0.0 < reward < 1.0 and len(info["flipped"]) == 21
        env.reset(seed=0)
        env.step("echo '# edited' >> /testbed/slugify/__init__.py")
        _, reward, *_ = env.step("submit")
        assert reward == -1.0
    finally:
        env.close()


def test_fault_signature() -> None:
    fault = Fault("f", "other", "t", ("a",), ("b",), "s")
    assert fault.signature == "f:t"
    combined = Proposal.from_faults([fault, Fault("e", "other", "u", ("c",), ("d",), "s")], "g")
    assert combined.signature == "e:u+f:t"
    assert combined.break_commands == ["a", "c"] and combined.repair_commands == ["d", "b"]


def _entry(index: int, fault: Fault | None, status: str, reason: str | None = None, **extra) -> dict:
    entry = {"gold": "g", "index": index, "status": status, "reason": reason, **extra}
    if fault is not None:
        entry |= {"family": fault.family, "signature": fault.signature}
        if status == "accepted":
            entry["fault"] = fault_to_dict(fault)
    return entry


def test_feedback_steers_families_and_composes_validated_faults() -> None:
    dep = Fault("uninstalled-python-dependency", "dependencies-runtime", "six", ("pip uninstall -y six",),
                ("pip install six",), "imports fail", ("six",))  # fmt: skip
    exe = Fault("interpreter-not-executable", "file-system", "/usr/bin/python3.11",
                ("chmod 0600 /usr/bin/python3.11",), ("chmod 0755 /usr/bin/python3.11",), "no python")  # fmt: skip
    ca = Fault(
        "ca-bundle-removed", "network-security", "/etc/ssl/certs/ca-certificates.crt", ("rm x",), ("y",), "s"
    )
    tz = Fault("timezone-env", "config", "TZ", ("a",), ("b",), "s")
    feedback = Feedback()
    feedback.observe(_entry(0, exe, "accepted"))
    feedback.observe(_entry(1, dep, "accepted"))
    feedback.observe(_entry(2, ca, "rejected", "no-flip"))
    feedback.observe(_entry(3, tz, "rejected", "error"))  # a Docker hiccup says nothing about the fault
    assert feedback.tried("g", dep.signature) and feedback.tried("g", ca.signature)
    assert not feedback.tried("g", tz.signature) and not feedback.tried("other-gold", dep.signature)
    assert feedback.validated("g") == [exe, dep] and feedback.validated("other-gold") == []
    assert feedback.counts("g", ca.family) == (0, 1) and feedback.counts("g", tz.family) == (0, 0)
    rng = random.Random(0)
    wins = sum(
        feedback.sample_rate("g", dep.family, rng) > feedback.sample_rate("g", ca.family, rng)
        for _ in range(400)
    )
    assert wins > 300, wins  # a family that worked here is drawn before one that flipped nothing
    # Composites: validated parts from distinct families; the interpreter goes last (the others need it).
    inverter = HeuristicInverter(composite_share=1.0)
    proposal = inverter._composite("g", random.Random(1), feedback)
    assert proposal is not None and proposal.composed
    assert proposal.signature == f"{exe.signature}+{dep.signature}"
    assert proposal.break_commands == ["pip uninstall -y six", "chmod 0600 /usr/bin/python3.11"]
    assert proposal.repair_commands == ["chmod 0755 /usr/bin/python3.11", "pip install six"]
    feedback.observe(_entry(4, None, "accepted", family=proposal.family, signature=proposal.signature))
    assert feedback.counts("g", dep.family) == (1, 1)  # a composite is no evidence about one family
    assert inverter._composite("g", random.Random(1), feedback) is None  # the only pair is taken
    # Composites take over from single faults once those stop flipping tests on a gold.
    assert feedback.single_rate("g") is None and inverter.share("g", feedback) == 1.0
    steady = HeuristicInverter()
    assert steady.share("g", feedback) == COMPOSITE_SHARE  # too few single attempts to judge
    for i in range(RECENT_SINGLES):
        feedback.observe(
            _entry(10 + i, Fault("f", "config", f"t{i}", ("a",), ("b",), "s"), "rejected", "no-flip")
        )
    assert feedback.single_rate("g") == 1 / (RECENT_SINGLES + 2)
    assert (
        steady.share("g", feedback) == MAX_COMPOSITE_SHARE
        and steady.share("other-gold", feedback) == COMPOSITE_SHARE
    )
    for i in range(RECENT_SINGLES):
        feedback.observe(_entry(30 + i, Fault("f", "config", f"u{i}", ("a",), ("b",), "s"), "accepted"))
    assert steady.share("g", feedback) == COMPOSITE_SHARE  # single faults win again: the least share
    # A part that fails every test masks the others and leaves nothing passing: composites never take one.
    tmp = Fault(
        "broken-tmp-directory", "file-system", "/tmp:file", ("rm -rf /tmp && touch /tmp",), ("z",), "s"
    )
    feedback = Feedback()
    for i, (fault, failed) in enumerate(((exe, 300), (tmp, 300), (dep, 12), (ca, 40))):
        feedback.observe(_entry(i, fault, "accepted", fail_to_pass=failed))
    assert feedback.sweeping("g") == {exe.signature, tmp.signature}
    proposals = [inverter._composite("g", random.Random(seed), feedback) for seed in range(40)]
    assert {p.signature for p in proposals if p} == {f"{ca.signature}+{dep.signature}"}
    feedback = Feedback()
    for i, (fault, failed) in enumerate(((exe, 300), (tmp, 300), (dep, 12))):
        feedback.observe(_entry(i, fault, "accepted", fail_to_pass=failed))
    assert inverter._composite("g", random.Random(0), feedback) is None  # one partial family: no composite


@pytest.mark.slow
def test_workspace_queries_survive_their_container_being_removed() -> None:
    ws = GoldWorkspace(load_gold("python-slugify"))
    try:
        assert ws.query("pwd").strip() == "/testbed"
        first = ws._query
        remove_container(first)  # what `cligym gc` in another process does to a long generate run
        assert ws.query("pwd").strip() == "/testbed"
        assert ws._query is not None and ws._query.id != first.id
    finally:
        ws.close()


@pytest.mark.slow
def test_composite_of_validated_faults_needs_every_repair(tmp_path: Path) -> None:
    ws = GoldWorkspace(load_gold("python-slugify"))
    try:
        rng = random.Random(0)
        dep = BY_NAME["uninstalled-python-dependency"].fault(ws.context, "text-unidecode", rng)
        exe = BY_NAME["interpreter-not-executable"].fault(ws.context, "/usr/bin/python3.11", rng)
        assert dep is not None and exe is not None
        proposal = Proposal.from_faults([dep, exe], "python-slugify", composed=True)
        timings: dict = {}
        task = run_attempt(ws, proposal, tmp_path, "slugify-composite", Provenance(inverter="test"),
                           rng, timings=timings)  # fmt: skip
        assert task.spec.signature == proposal.signature and task.spec.fault_family.count("+") == 1
        assert task.break_lines() == list(proposal.break_commands)  # the hygiene wrapper is not a break
        assert len((task.path / "Dockerfile").read_text().split("RUN ")) == 2, "one RUN, one layer"
        assert set(timings) == {"live", "build", "rerun", "repair"}
        # Each part's repair alone leaves tests failing: the composite needs both.
        image = build_task_image(task)
        for part in (dep, exe):
            report, _ = validate.tests_in_fresh_container(
                image, task, before_tests="\n".join(part.repair_commands)
            )
            assert set(task.spec.fail_to_pass) - set(report.passed), part.family
        assert validate_task(task).ok
        # The same outcome again (same families, same failing tests) is a near-duplicate, refused before a build.
        claimed = {outcome_key(task.spec.fault_family, task.spec.fail_to_pass)}

        def claim(key: str) -> bool:
            return key not in claimed and not claimed.add(key)

        with pytest.raises(Rejection) as info:
            run_attempt(ws, proposal, tmp_path, "slugify-composite-again", Provenance(inverter="test"), rng,
                        claim=claim, timings=(again := {}))  # fmt: skip
        assert info.value.reason == "near-duplicate" and "build" not in again
    finally:
        ws.close()


def test_schedule_gives_slow_golds_fewer_rounds(tmp_path: Path) -> None:
    golds = [load_gold(name) for name in ("faker", "h11", "python-slugify")]
    generator = Generator(golds, tmp_path, HeuristicInverter())
    try:
        strides = generator.strides()  # faker's tests take ~80 s, the others' a few seconds
        assert strides["h11"] == strides["python-slugify"] == 1 and strides["faker"] == 6
        pairs = [(g.name, i) for g, i in itertools.islice(generator._schedule(), 29)]
        assert [i for g, i in pairs if g == "faker"] == [0, 6, 12]
        assert [i for g, i in pairs if g == "h11"] == list(range(13))
    finally:
        generator.close()


@pytest.mark.slow
def test_a_fault_that_breaks_only_the_reporting_is_rejected(tmp_path: Path) -> None:
    """`tee` unusable on a TAP gold: the old harness piped the output through it, so every test "failed"; the
    trusted harness keeps the output itself, so nothing flips and no task is made."""
    ws = GoldWorkspace(load_gold("perl-try-tiny"))
    try:
        fault = Fault("executable-permission", "file-system", "/usr/bin/tee", ("chmod 0644 /usr/bin/tee",),
                      ("chmod 0755 /usr/bin/tee",), "A program cannot be started.")  # fmt: skip
        proposal = Proposal.from_faults([fault], "perl-try-tiny")
        with pytest.raises(Rejection) as info:
            run_attempt(ws, proposal, tmp_path, "try-tiny-tee", Provenance(inverter="test"), random.Random(0))
        assert info.value.reason == "no-flip"
        assert not list(tmp_path.iterdir())
    finally:
        ws.close()
