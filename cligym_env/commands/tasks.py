"""`cligym tasks export|import`: tasks in the Terminal-Bench and Harbor layouts, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cligym_env.commands.common import JsonOpt, emit
from cligym_env.errors import CligymError

tasks_app = typer.Typer(
    no_args_is_help=True,
    help="Task sets: move them to and from Terminal-Bench, Harbor and the Hub; describe, audit, check.",
)


@tasks_app.command("export")
def export_tasks(
    task_dirs: Annotated[list[Path], typer.Argument(help="Task folders, or folders of task folders.")],
    out: Annotated[Path, typer.Option(help="Folder that receives one folder per task.")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="terminal-bench, harbor, or hf (one Hugging Face dataset, one row a task)."
        ),
    ] = "terminal-bench",
    as_json: JsonOpt = False,
) -> None:
    """Write tasks in the Terminal-Bench or Harbor layout (their Dockerfiles build FROM the local gold image), or
    as a Hugging Face dataset with its card (`--format hf`: `datasets.load_from_disk(OUT)`)."""
    from cligym_env.interop import FORMATS, export_task
    from cligym_env.task import list_tasks

    if fmt not in (*FORMATS, "hf"):
        raise CligymError(f"unknown format '{fmt}' (use {', '.join(FORMATS)} or hf)")
    found = [t for p in task_dirs for t in list_tasks(p)]
    if not found:
        raise CligymError(f"no task folders (with task.yaml) in {', '.join(map(str, task_dirs))}")
    if fmt == "hf":
        from cligym_env.hub import export_task_set

        result = export_task_set(found, out)
        emit({"format": fmt, **result}, as_json, f"exported {result['tasks']} tasks as a dataset -> {out}")
        return
    written = [str(export_task(t, out, fmt)) for t in found]
    emit({"format": fmt, "tasks": written}, as_json, f"exported {len(written)} tasks ({fmt}) -> {out}")


@tasks_app.command("import")
def import_tasks(
    folders: Annotated[list[Path], typer.Argument(help="Exported task folders, or folders of them.")],
    out: Annotated[Path, typer.Option(help="Where the cligym task folders go.")] = Path("tasks/generated"),
    as_json: JsonOpt = False,
) -> None:
    """Make cligym tasks from Terminal-Bench or Harbor folders exported by `cligym tasks export`, or from a task set
    exported as a Hugging Face dataset (`--format hf`)."""
    from cligym_env.hub import import_task_set, is_task_set
    from cligym_env.interop import SPEC_FILE, import_task

    if len(folders) == 1 and is_task_set(folders[0]):
        out.mkdir(parents=True, exist_ok=True)
        made, skipped = import_task_set(folders[0], out)
        if made:
            from cligym_env.index import refresh_indexes

            refresh_indexes([out])
        human = f"imported {len(made)} tasks -> {out}" + (
            f" ({len(skipped)} already there)" if skipped else ""
        )
        emit({"imported": made, "skipped": skipped, "out": str(out)}, as_json, human)
        return

    candidates = []
    for folder in folders:
        if (
            (folder / SPEC_FILE).is_file()
            or (folder / "task.yaml").is_file()
            or (folder / "task.toml").is_file()
        ):
            candidates.append(folder)
        elif folder.is_dir():
            candidates += sorted(p for p in folder.iterdir() if p.is_dir())
    if not candidates:
        raise CligymError(f"no task folders in {', '.join(map(str, folders))}")
    out.mkdir(parents=True, exist_ok=True)
    made, skipped = [], []
    for folder in candidates:
        if (out / folder.name).exists():
            skipped.append(folder.name)
            continue
        made.append(import_task(folder, out).id)
    if made:
        from cligym_env.index import refresh_indexes

        refresh_indexes([out])
    human = f"imported {len(made)} tasks -> {out}" + (
        f" (already there: {', '.join(skipped)})" if skipped else ""
    )
    emit({"imported": made, "skipped": skipped, "out": str(out)}, as_json, human)


def register(app: typer.Typer) -> None:
    app.add_typer(tasks_app, name="tasks")
