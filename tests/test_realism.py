"""Task realism: project-specific fault families, and broken images without forensic traces."""

from __future__ import annotations

import random
import subprocess
import sysconfig
from pathlib import Path

import pytest

from cligym_env.gold import load_gold
from cligym_env.inversion.families import ALL_FAMILIES, BY_NAME
from cligym_env.inversion.families.settings import ROWS, SettingFamily
from cligym_env.inversion.families.source import apply_site, mutation_sites, sed_command
from cligym_env.inversion.hygiene import conceal
from cligym_env.inversion.pipeline import GoldWorkspace, Proposal, run_attempt
from cligym_env.runtime.containers import exec_once, remove_container, start_container
from cligym_env.task import CATEGORIES, Provenance, dockerfile_text
from cligym_env.task_image import build_broken_image

STDLIB = Path(sysconfig.get_paths()["stdlib"])


def test_the_families_span_all_eight_categories() -> None:
    assert {f.category for f in ALL_FAMILIES} == set(CATEGORIES)
    assert len(CATEGORIES) == 8 and "source-logic" in CATEGORIES
    assert len(ALL_FAMILIES) >= 45


@pytest.mark.parametrize("module", ["textwrap.py", "shlex.py", "fractions.py", "ipaddress.py"])
def test_each_mutation_site_is_one_sed_edit_that_still_parses(module: str, tmp_path: Path) -> None:
    source = (STDLIB / module).read_text()
    sites = mutation_sites(source)
    assert len(sites) >= 10 and {s.kind for s in sites} >= {"compare", "constant"}
    for site in random.Random(0).sample(sites, 8):
        expected = apply_site(source, site)
        assert expected != source
        compile(expected, module, "exec")  # one token changed: still valid Python
        copy = tmp_path / module
        copy.write_text(source)
        subprocess.run(["sh", "-c", sed_command(str(copy), site)], check=True)
        assert copy.read_text() == expected, site


def test_setting_rows_are_families_with_varied_hints() -> None:
    families = {f.name: f for f in ALL_FAMILIES if isinstance(f, SettingFamily)}
    assert len(families) == len(ROWS) >= 10
    assert {"concurrency", "network-security", "other"} <= {f.category for f in families.values()}
    for row in ROWS:
        assert len(row.symptoms) >= 2, row.name
        assert row.values and all(v for v in row.values)


@pytest.mark.slow
def test_a_broken_image_carries_no_trace_of_when_or_what(tmp_path: Path) -> None:
    """`find -newer` finds no broken file, logs and mtimes are the gold's, and only the fault differs."""
    ws = GoldWorkspace(load_gold("python-slugify"))
    stdlib = ws.probe.stdlib
    target = f"{stdlib}/textwrap.py"
    breaks = [
        f"sed -i 's/width=70/width=71/' {target}",  # a patched module (its bytecode must follow)
        "rm -f /etc/mime.types",
        "echo 'export PYTHONOPTIMIZE=1' >> /etc/profile.d/local-env.sh",
        "cp /etc/hostname /etc/hostname.bak && touch /root/notes~",  # leftovers a careless edit leaves
    ]
    image = build_broken_image(
        "python-slugify", dockerfile_text(conceal(breaks, 3)), repo="cligym/test-hygiene"
    )
    before = start_container(ws.image, workdir="/testbed")
    after = start_container(image, workdir="/testbed")
    stat = f"stat -c '%Y %n' {target} /etc /etc/profile.d /etc/profile.d/local-env.sh {stdlib}/__pycache__ /var/log/dpkg.log 2>&1"
    try:
        old = exec_once(before, stat, timeout=60).output.split("\n")
        new = exec_once(after, stat, timeout=60).output.split("\n")
        # The patched module and the profile folder keep the gold's mtimes (/etc's own changes with every
        # container: Docker mounts hosts and resolv.conf there).
        assert old[0] == new[0] and old[2] == new[2], (old, new)
        # Whatever is newer than the gold's last build step in the broken image is newer in the gold too.
        newer = "find / -xdev -newer /opt/venv/pyvenv.cfg -not -path '/proc/*' 2>/dev/null"
        extra = set(exec_once(after, newer, timeout=120).output.split()) - set(
            exec_once(before, newer, timeout=120).output.split()
        )
        assert not extra, sorted(extra)[:20]
        left = exec_once(after, "ls /etc/hostname.bak /root/notes~ /root/.cache 2>&1", timeout=30).output
        assert left.count("No such file") == 3, left
        check = exec_once(after, f"grep -c 'width=71' {target}; python -c 'import textwrap; print(textwrap.TextWrapper().width)'", timeout=60).output.split()  # fmt: skip
        assert check[-1] == "71", check  # the fault itself is there, and Python runs it (not stale bytecode)
        assert exec_once(after, "[ -e /etc/mime.types ] || echo gone", timeout=30).output.strip() == "gone"
        # ctime cannot be set back: the broken file hides among many refreshed ones.
        crowd = exec_once(
            after, "find /usr /etc /opt -xdev -type f -cnewer /opt/venv/pyvenv.cfg | wc -l", timeout=120
        )
        assert int(crowd.output.split()[-1]) >= 50
    finally:
        remove_container(before)
        remove_container(after)
        ws.close()


@pytest.mark.slow
def test_a_patched_dependency_breaks_some_tests_and_the_reinstall_repairs_it(tmp_path: Path) -> None:
    ws = GoldWorkspace(load_gold("python-slugify"))
    try:
        family = BY_NAME["patched-dependency-logic"]
        targets = family.targets(ws.context)
        assert targets and all("text_unidecode" in t for t in targets), targets[:5]
        # Aimed at what the suite runs: every target sits on a line that some tests ran (not all of them, and
        # not at import), in a function the traced test run entered; the fault watches those tests.
        coverage = ws.context.coverage()
        assert any(key.endswith("text_unidecode/__init__.py:unidecode") for key in coverage.calls)
        for target in targets:
            path, line, _nth, _kind = target.rsplit(":", 3)
            source = ws.query(f"cat {path}")
            site = next(s for s in mutation_sites(source) if s.line == int(line))
            assert f"{path}:{site.function}" in coverage.calls
            count, ids, outside = coverage.reach(path, site.line, site.statement)
            assert 0 < count <= 0.5 * len(coverage.tests) and not outside and ids
            assert set(family.fault(ws.context, target, random.Random(0)).watch) == set(ids)
        rng = random.Random(5)
        made = None
        for target in rng.sample(targets, min(6, len(targets))):
            fault = family.fault(ws.context, target, rng)
            try:
                made = run_attempt(
                    ws, Proposal.from_faults([fault], "python-slugify"), tmp_path, "slugify-patched",
                    Provenance(inverter="test"), random.Random(0),
                )  # fmt: skip
                break
            except Exception:  # an equivalent mutant or an unused line: no test notices
                continue
        assert made is not None, "no mutation of text_unidecode flipped a test"
        assert made.spec.category == "source-logic"
        assert (made.path / "broken-output.txt").read_text()
        solution = (made.path / "solution.sh").read_text()
        assert "pip install --force-reinstall --no-deps text-unidecode==" in solution
        # The heuristic agent finds it as an administrator would: a file that differs from its RECORD hash.
        import gymnasium as gym

        import cligym_env  # noqa: F401  (registers the environments)
        from agents.registry import make_policy
        from cligym_env.rollout import play_episode

        env = gym.make("cligym/Repair-v0", task=made, disable_env_checker=True)
        try:
            episode = play_episode(env, make_policy("heuristic", made), made, seed=0, episode_timeout=600)
        finally:
            env.close()
        assert episode["resolved"], [m["content"][-300:] for m in episode["messages"][-4:]]
        assert any("CHANGED_FILES text-unidecode" in m["content"] for m in episode["messages"])
    finally:
        ws.close()


def _task_set(root: Path, rows: list[tuple[str, str, str, int, int, str]]) -> list:
    from cligym_env.task import TaskSpec, list_tasks, write_task

    for task_id, gold, family, f2p, p2p, inverter in rows:
        spec = TaskSpec(
            id=task_id, gold=gold, title=task_id, instruction=f"{task_id} fails", fault_family=family,
            category="file-system", fail_to_pass=[f"t::f{i}" for i in range(f2p)],
            pass_to_pass=[f"t::p{i}" for i in range(p2p)], test_command="python -m pytest",
            provenance=Provenance(inverter=inverter),
        )  # fmt: skip
        write_task(root, spec, dockerfile_text(["true"]), "#!/usr/bin/env bash\ntrue\n")
    return list_tasks(root)


def test_rebalance_retires_sweeping_tasks_of_the_largest_family_first(tmp_path: Path) -> None:
    from cligym_env.inversion.rebalance import plan_rebalance, retire

    rows = [(f"tmp{i}", f"g{i % 2}", "broken-tmp", 10, 0, "heuristic") for i in range(14)]
    rows += [(f"mix{i}", "g0", "broken-tmp+missing-exe", 10, 0, "heuristic") for i in range(3)]
    rows += [(f"exe{i}", "g1", "missing-exe", 10, 0, "heuristic") for i in range(4)]
    rows += [(f"part{i}", f"g{i % 2}", "patched-dependency-logic", 2, 8, "heuristic") for i in range(8)]
    rows += [("hand", "g0", "broken-tmp", 10, 0, "manual")]
    tasks = _task_set(tmp_path / "set", rows)
    assert plan_rebalance(tasks, min_total=len(tasks)).retire == []  # never below the floor on tasks
    plan = plan_rebalance(tasks, min_total=20, keep=["tmp0"])
    retired = {t.id for t in plan.retire}
    assert len(retired) == len(tasks) - 20
    assert retired <= {
        t.id for t in tasks if t.id.startswith(("tmp", "mix"))
    }  # the largest family goes first
    assert {t.id for t in plan.retire[:3]} == {
        "mix0",
        "mix1",
        "mix2",
    }  # composites with a sweeping part first
    assert "tmp0" not in retired and "hand" not in retired  # kept: named, and hand-written
    assert plan.after["sweeping_share"] < plan.before["sweeping_share"]
    moved = retire(plan, tmp_path / "retired")
    assert len(moved) == len(retired) and all((m / "RETIRED.md").is_file() for m in moved)
    assert not any((tmp_path / "set" / r).exists() for r in retired)


def test_conceal_wraps_old_dockerfiles_once_and_keeps_their_commands() -> None:
    from cligym_env.inversion.hygiene import JOIN, NOTE, conceal_dockerfile

    old = (
        "# g: broken-tmp-directory (/tmp)\nARG CLIGYM_GOLD_IMAGE\nFROM ${CLIGYM_GOLD_IMAGE}\n"
        "RUN rm -rf /tmp && touch /tmp\nRUN chmod 0644 /usr/bin/less\n"
    )
    wrapped = conceal_dockerfile(old, 7)
    assert wrapped is not None and f"# {NOTE}" in wrapped and wrapped.startswith("# g: broken-tmp-directory")
    run = wrapped.split("\nRUN ", 1)[1]
    assert run.split(JOIN)[1:-1] == ["rm -rf /tmp && touch /tmp", "chmod 0644 /usr/bin/less"]
    assert conceal_dockerfile(wrapped, 99) is None  # current already: unchanged, its seed kept
    assert conceal_dockerfile(old.replace("RUN chmod", "COPY x /y\nRUN chmod"), 7) is None  # hand-made: left


def test_a_flip_must_show_in_the_run_not_only_in_missing_test_ids() -> None:
    from cligym_env.inversion.pipeline import _visible
    from cligym_env.testing import Outcome, TestReport

    ids = ["t::a[x-1]", "t::b"]
    green_without_a = TestReport(outcomes={"t::a[x-2]": Outcome.PASSED, "t::b": Outcome.PASSED})
    # A parametrization that vanished from a green run: nobody would see it.
    assert not _visible(green_without_a, ["t::a[x-1]"])
    failed = TestReport(outcomes={ids[0]: Outcome.FAILED, ids[1]: Outcome.PASSED})
    skipped = TestReport(outcomes={ids[0]: Outcome.SKIPPED, ids[1]: Outcome.PASSED})
    collection_error = TestReport(outcomes={"tests.test_mod": Outcome.ERROR})
    assert _visible(failed, ids[:1]) and _visible(skipped, ids[:1]) and _visible(collection_error, ids)
    assert _visible(TestReport(outcomes={}), ids)  # no results at all: the run itself failed


@pytest.mark.slow
def test_a_fault_whose_watched_tests_still_pass_is_refused_before_the_full_run(tmp_path: Path) -> None:
    """The screen: the tests known to reach what a fault changes run alone first; if they pass, the candidate is
    refused in seconds, without the whole suite. If they fail, the full run decides."""
    from cligym_env.inversion.families.base import Fault
    from cligym_env.inversion.pipeline import Rejection
    from cligym_env.inversion.tracing import screen

    ws = GoldWorkspace(load_gold("python-slugify"))
    try:
        coverage = ws.context.coverage()
        assert len(coverage.tests) >= len(ws.record.passing) // 2  # the traced run ran the suite
        module = next(p for p in coverage.lines if p.endswith("text_unidecode/__init__.py"))
        watch = tuple(
            next(ids for line in coverage.lines[module] for ids in [coverage.reach(module, line)[1]] if ids)
        )
        harmless = Fault(family="test-harmless", category="other", target="x",
                         break_commands=("echo 'x = 1' > /etc/cligym-unused.conf",),
                         repair_commands=("rm -f /etc/cligym-unused.conf",), symptom="-", watch=watch)  # fmt: skip
        timings: dict = {}
        with pytest.raises(Rejection) as refused:
            run_attempt(ws, Proposal.from_faults([harmless], "python-slugify"), tmp_path, "slugify-screen",
                        Provenance(inverter="test"), random.Random(0), timings=timings)  # fmt: skip
        assert refused.value.reason == "no-flip" and "still pass" in refused.value.detail
        assert "screen" in timings and "live" not in timings  # the whole suite never ran
        # The same tests (they call text_unidecode) with that module gone: the screen sees them fail.
        container = start_container(ws.image, workdir=ws.gold.spec.workdir)
        try:
            exec_once(container, f"rm -rf {ws.probe.site_packages}/text_unidecode", timeout=60, workdir="/")
            failing = screen(container, ws.gold.spec.test_command, ws.gold.spec.workdir, list(watch))
        finally:
            remove_container(container)
        assert failing is not None and not failing.conclusive_pass and failing.code != 0
    finally:
        ws.close()


def test_a_site_knows_the_statement_a_tracer_sees_run_and_nested_functions_count_once() -> None:
    source = (
        "def outer(a, b):\n"
        "    def inner(x):\n"
        "        return x == 3\n"
        "    if (a <\n"
        "            b):\n"
        "        return inner(a)\n"
        "    return False\n"
    )
    sites = mutation_sites(source)
    keys = [(s.line, s.nth, s.kind) for s in sites]
    assert len(keys) == len(set(keys))  # `inner` is walked with `outer` and alone, listed once
    compare = next(s for s in sites if s.old == " == ")
    assert (compare.line, compare.statement) == (3, 3)
    constant = next(s for s in sites if s.kind == "constant")
    assert constant.new == "4" and constant.statement == 3


@pytest.mark.slow
def test_families_aim_at_what_the_traced_suite_used() -> None:
    """The traced run says which tests open a data file, import a module lazily, connect a socket or start a
    thread; families aim at those, and each fault watches the tests that can notice it."""
    ws = GoldWorkspace(load_gold("python-slugify"))
    try:
        coverage = ws.context.coverage()
        data = "text_unidecode/data.bin"
        path = next(p for p in coverage.files if p.endswith(data))
        count, ids, outside = coverage.opened(path)
        assert 0 < count < len(coverage.tests) and ids and not outside  # read on first use, inside a test
        fault = BY_NAME["deleted-package-data"].fault(ws.context, path, random.Random(0))
        assert fault is not None and set(fault.watch) == set(ids)
        module = BY_NAME["deleted-python-module-file"]
        assert module.targets(ws.context) == ["text-unidecode:text_unidecode/__init__.py"]
        assert module.fault(ws.context, module.targets(ws.context)[0], random.Random(0)).watch
        # This suite neither connects nor starts threads: the proxy and thread-stack rows have nothing to aim at.
        assert not any(k.startswith(("event:socket.connect", "event:thread.start")) for k in coverage.files)
        assert BY_NAME["proxy-env"].targets(ws.context) == []
        assert BY_NAME["thread-stack-size"].targets(ws.context) == []
    finally:
        ws.close()
