"""`cligym tasks make|stats|calibrate`: build task sets from candidates, describe them, calibrate difficulty."""

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
    emit(results, as_json)


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

    data = task_stats(_load(tasks))
    text = stats_markdown(data, shlex.join(["cligym", *sys.argv[1:]]))
    if write:
        write_atomic(write, text)
    emit(data, as_json, text)


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
    dropped = sum(len(g) - 1 for g in groups)
    emit(out, as_json, f"{len(groups)} groups, {dropped} near-duplicates" + (" removed" if remove else ""))


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
    emit(calibrate_tasks(chosen, force=force, workers=workers, on_result=show), as_json)


def register(app: typer.Typer) -> None:
    """The commands attach to the `tasks` group (see cligym_env/commands/tasks.py) when this module loads."""
