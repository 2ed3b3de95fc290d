"""`cligym tasks make|check|stats|audit|restate|dedup|rebalance|conceal|calibrate`: build task sets from candidates, describe and audit
them, restate them, calibrate difficulty."""

from __future__ import annotations

import random
import shlex
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from cligym_env.commands.common import JsonOpt, emit, say
from cligym_env.commands.tasks import tasks_app
from cligym_env.errors import CligymError

TasksArg = Annotated[list[Path], typer.Argument(help="Task folders, or folders of task folders.")]


def _load(paths: list[Path]):
    from cligym_env.task import list_tasks

    found = [t for p in paths for t in list_tasks(p)]
    if not found:
        raise CligymError(f"no task folders (with task.yaml) in {', '.join(map(str, paths))}")
    return found


def _reindex(*paths: Path) -> None:
    from cligym_env.index import refresh_indexes

    refresh_indexes(paths)


def _gold_names() -> list[str]:
    """Every gold under the gold root: each must contribute tasks, even one that has none yet."""
    from cligym_env.gold import GOLD_FILE, default_gold_root

    root = default_gold_root()
    return sorted(p.name for p in root.iterdir() if (p / GOLD_FILE).is_file()) if root.is_dir() else []


@tasks_app.command("make")
def make(
    candidates: Annotated[
        Path, typer.Argument(help="YAML file with a `candidates:` list (see tasks/seeds/).")
    ],
    out: Annotated[Path, typer.Option(help="Folder that receives the task folders.")] = Path(
        "tasks/generated"
    ),
    as_json: JsonOpt = False,
) -> None:
    """Turn hand-written candidate faults into validated tasks (existing ids are skipped)."""
    from cligym_env.inversion.candidate import Rejected, load_candidates, make_task
    from cligym_env.task import Provenance

    results = []
    for cand in load_candidates(candidates):
        if (out / cand.task_id()).exists():
            results.append({"id": cand.task_id(), "status": "exists"})
            continue
        try:
            task = make_task(cand, out, Provenance(inverter="manual"), progress=say)
            results.append({"id": task.id, "status": "made", "fail_to_pass": len(task.spec.fail_to_pass)})
            emit(None, False, f"[green]made[/green] {task.id} ({len(task.spec.fail_to_pass)} FAIL_TO_PASS)")
        except Rejected as exc:
            results.append({"id": cand.task_id(), "status": "rejected", "reason": str(exc)})
            emit(None, False, f"[yellow]rejected[/yellow] {exc}")
    _reindex(out)
    emit(results, as_json)


@tasks_app.command("check")
def check(
    tasks: TasksArg,
    sample: Annotated[int | None, typer.Option(help="Check a random sample of this many tasks.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    as_json: JsonOpt = False,
) -> None:
    """Read every task in full, without Docker: its spec (schema, id = folder, FAIL_TO_PASS and PASS_TO_PASS
    disjoint), Dockerfile, solution.sh and gold. Exits 1 naming each bad task and what is wrong."""
    from cligym_env.gold import load_gold
    from cligym_env.task import load_task

    chosen = _load(tasks)
    if sample is not None:
        chosen = random.Random(seed).sample(sorted(chosen, key=lambda t: t.id), min(sample, len(chosen)))
    problems: dict[str, str] = {}
    for task in chosen:
        try:
            loaded = load_task(task.path)
            if loaded.id != task.path.name:
                raise CligymError(f"{task.path}: id '{loaded.id}' is not its folder's name")
            if not loaded.break_lines():
                raise CligymError(f"{loaded.dockerfile}: no breaking command")
            if not loaded.solution_script().strip():
                raise CligymError(f"{loaded.solution}: empty")
            load_gold(loaded.spec.gold)
        except CligymError as exc:
            problems[task.path.name] = str(exc)
            say(f"[red]bad[/red] {exc}")
    emit(
        {"checked": len(chosen), "problems": problems},
        as_json,
        f"{len(chosen)} tasks read, {len(problems)} bad",
    )
    if problems:
        raise typer.Exit(1)


@tasks_app.command("stats")
def stats(
    tasks: TasksArg,
    write: Annotated[
        Path | None, typer.Option(help="Also write the tables as markdown to this file.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts by gold, fault family, category and difficulty, and FAIL_TO_PASS / PASS_TO_PASS sizes."""
    from cligym_env.inversion.stats import stats_markdown, task_stats
    from cligym_env.specs import write_atomic

    data = task_stats(_load(tasks), golds=_gold_names())
    text = stats_markdown(data, shlex.join(["cligym", *sys.argv[1:]]))
    if write:
        write_atomic(write, text)
    emit(data, as_json, text)


@tasks_app.command("audit")
def audit(
    tasks: TasksArg,
    sample: Annotated[int, typer.Option(help="Show N random tasks: statement, broken output, repair.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    run: Annotated[
        bool, typer.Option("--run", help="Run each sampled task's broken image tests now (Docker).")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when a target is not met.")] = False,
    all_golds: Annotated[
        bool, typer.Option(help="Count every gold under tasks/gold, not only those with tasks in DIR.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Issue #13's realism and diversity targets, checked from the task files, with PASS / FAIL for each.

    Sweeping means the failing tests are at least 90% of the task's tests. A sample shows, for a person to
    review, each task's statement, the end of its broken run's output (stored in `broken-output.txt`, or run
    now with --run) and its repair, side by side.
    """
    from cligym_env.inversion.audit import (
        audit_figures,
        audit_markdown,
        sample_tasks,
        sample_view,
        target_checks,
    )

    found = _load(tasks)
    figures = audit_figures(found, golds=_gold_names() if all_golds else ())
    checks = target_checks(figures)
    views = [sample_view(t, run, say) for t in sample_tasks(found, sample, seed)] if sample else []
    if as_json:
        emit({"figures": figures, "targets": checks, "sample": views}, True)
    else:  # plain Markdown on stdout, so it can be pasted or redirected; the sample as tables after it
        print(audit_markdown(figures), end="", flush=True)
        for view in views:
            _show_sample(view)
    if strict and not all(c["ok"] for c in checks):
        raise typer.Exit(1)


def _show_sample(view: dict) -> None:
    from rich.table import Table
    from rich.text import Text

    from cligym_env.commands.common import console

    table = Table(
        title=f"{view['id']} ({view['family']}; {view['fail_to_pass']} fail, {view['pass_to_pass']} pass)",
        expand=True, show_lines=True,
    )  # fmt: skip
    for column in ("statement", "broken run (end of output)", "repair"):
        table.add_column(column, ratio=1, overflow="fold")
    output = view["broken_output"] or "(not stored; rerun with --run)"
    table.add_row(Text(view["statement"]), Text(output[-2500:]), Text(view["solution"]))
    console.print(table)


@tasks_app.command("restate")
def restate(
    tasks: TasksArg,
    only_duplicates: Annotated[
        bool,
        typer.Option(
            "--only-duplicates", help="Only tasks whose statement another task on the gold has (first kept)."
        ),
    ] = False,
    run: Annotated[
        bool,
        typer.Option("--run", help="Run the broken image tests for tasks without a stored broken output."),
    ] = False,
    workers: Annotated[int, typer.Option(help="Tasks whose broken output is fetched at once.")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Write statements again from the broken run (counts, failing tests, an output excerpt), none shared by
    two tasks on a gold; atomic per task and resumable."""
    from cligym_env.inversion.restate import restate_tasks
    from cligym_env.task import TASK_FILE

    root = tasks[0] if len(tasks) == 1 and not (tasks[0] / TASK_FILE).is_file() else None
    counts = restate_tasks(
        _load(tasks), root, only_duplicates=only_duplicates, run=run, workers=workers,
        on_task=lambda task, outcome: say(f"{task.id}: {outcome}"),
    )  # fmt: skip
    _reindex(*tasks)
    emit(counts, as_json, ", ".join(f"{k} {v}" for k, v in counts.items()))


@tasks_app.command("dedup")
def dedup(
    tasks: TasksArg,
    remove: Annotated[
        bool,
        typer.Option("--remove", help="Delete all but the first task of each group (else only list them)."),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Near-duplicates: tasks on one gold with the same fault family and the same FAIL_TO_PASS tests.

    `cligym generate` rejects these as it goes; this finds them in task sets made before, or merged from several
    runs. The first of each group is kept: hand-written tasks first, then the oldest.
    """
    from cligym_env.inversion.stats import near_duplicate_groups

    groups = near_duplicate_groups(_load(tasks))
    out = [{"keep": g[0].id, "drop": [t.id for t in g[1:]]} for g in groups]
    for group in groups:
        say(f"{group[0].id}: near-duplicates {', '.join(t.id for t in group[1:])}")
        if remove:
            for task in group[1:]:
                shutil.rmtree(task.path)
    if remove:
        _reindex(*tasks)
    dropped = sum(len(g) - 1 for g in groups)
    emit(out, as_json, f"{len(groups)} groups, {dropped} near-duplicates" + (" removed" if remove else ""))


@tasks_app.command("rebalance")
def rebalance(
    tasks: TasksArg,
    retire_to: Annotated[
        Path, typer.Option(help="Where retired task folders go (with a RETIRED.md).")
    ] = Path("tasks/retired"),
    min_total: Annotated[
        int, typer.Option(help="Never retire below this many tasks (the audit's target is 2,000).")
    ] = 2000,
    max_sweeping: Annotated[
        float, typer.Option(help="Stop once sweeping tasks are at most this share.")
    ] = 0.2,
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", help="Task ids never to retire (repeat), e.g. those tests use."),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be retired.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Retire surplus sweeping tasks (those failing >= 90% of their tests), most over-represented family first,
    never below --min-total tasks, a gold's floor of 10, or a hand-written task."""
    from cligym_env.inversion.rebalance import plan_rebalance, retire

    plan = plan_rebalance(_load(tasks), min_total=min_total, max_sweeping=max_sweeping, keep=keep or ())
    if not dry_run:
        retire(plan, retire_to)
        _reindex(*tasks)
    out = {
        "retired": [t.id for t in plan.retire],
        "before": plan.before,
        "after": plan.after,
        "dry_run": dry_run,
    }
    emit(
        out,
        as_json,
        f"{'would retire' if dry_run else 'retired'} {len(plan.retire)} sweeping tasks; sweeping share "
        f"{plan.before['sweeping_share']:.1%} -> {plan.after['sweeping_share']:.1%}, largest family "
        f"{plan.after['largest_family']} {plan.after['largest_family_share']:.1%}, {plan.after['tasks']} tasks",
    )


@tasks_app.command("conceal")
def conceal(
    tasks: TasksArg,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would change.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Wrap each task's breaking commands so its image carries no forensic trace (mtimes, package-manager logs,
    backups; see `cligym_env/inversion/hygiene.py`), or re-wrap them in the current version. Images rebuild on
    next use; re-validate a sample afterwards (`cligym validate --sample`)."""
    import hashlib

    from cligym_env.inversion.hygiene import conceal_dockerfile
    from cligym_env.specs import write_atomic

    changed = []
    for task in _load(tasks):
        seed = int(hashlib.sha256(task.id.encode()).hexdigest()[:8], 16)
        text = conceal_dockerfile(task.dockerfile.read_text(encoding="utf-8"), seed)
        if text is not None:
            changed.append(task.id)
            if not dry_run:
                write_atomic(task.dockerfile, text)
    if changed and not dry_run:
        _reindex(*tasks)
    emit(
        {"changed": changed, "dry_run": dry_run},
        as_json,
        f"{len(changed)} Dockerfiles {'to wrap' if dry_run else 'wrapped'}",
    )


@tasks_app.command("calibrate")
def calibrate(
    tasks: TasksArg,
    force: Annotated[bool, typer.Option(help="Recalibrate tasks that already have a difficulty.")] = False,
    workers: Annotated[int, typer.Option(help="Episodes played at once.")] = 1,
    shuffle: Annotated[
        int | None,
        typer.Option(
            help="Calibrate in a random order from this seed (an interrupted run leaves a fair sample)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Set each task's difficulty from one episode of the heuristic repair agent (easy / medium / hard)."""
    from cligym_env.inversion.calibrate import calibrate_tasks

    def show(result: dict) -> None:
        emit(
            None,
            False,
            f"{result['task']}: {result['difficulty']} (resolved={result['resolved']}, {result['n_steps']} steps)",
        )

    chosen = _load(tasks)
    if shuffle is not None:
        random.Random(shuffle).shuffle(chosen)
    try:
        results = calibrate_tasks(chosen, force=force, workers=workers, on_result=show)
    finally:  # an interrupted run keeps what it wrote, and the index says so
        _reindex(*tasks)
    emit(results, as_json)


def register(app: typer.Typer) -> None:
    """The commands attach to the `tasks` group (see cligym_env/commands/tasks.py) when this module loads."""
