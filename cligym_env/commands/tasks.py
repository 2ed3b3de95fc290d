"""`cligym tasks export|import`: tasks in the Terminal-Bench and Harbor layouts, and back."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cligym_env.commands.common import JsonOpt, emit
from cligym_env.errors import CligymError

tasks_app = typer.Typer(no_args_is_help=True, help="Move tasks between cligym and Terminal-Bench / Harbor.")


@tasks_app.command("export")
def export_tasks(
    task_dirs: Annotated[list[Path], typer.Argument(help="Task folders, or folders of task folders.")],
    out: Annotated[Path, typer.Option(help="Folder that receives one folder per task.")],
    fmt: Annotated[str, typer.Option("--format", help="terminal-bench or harbor.")] = "terminal-bench",
    as_json: JsonOpt = False,
) -> None:
    """Write tasks in the Terminal-Bench or Harbor layout (their Dockerfiles build FROM the local gold image)."""
    from cligym_env.interop import FORMATS, export_task
    from cligym_env.task import list_tasks

    if fmt not in FORMATS:
        raise CligymError(f"unknown format '{fmt}' (use {' or '.join(FORMATS)})")
    found = [t for p in task_dirs for t in list_tasks(p)]
    if not found:
        raise CligymError(f"no task folders (with task.yaml) in {', '.join(map(str, task_dirs))}")
    written = [str(export_task(t, out, fmt)) for t in found]
    emit({"format": fmt, "tasks": written}, as_json, f"exported {len(written)} tasks ({fmt}) -> {out}")


@tasks_app.command("import")
def import_tasks(
    folders: Annotated[list[Path], typer.Argument(help="Exported task folders, or folders of them.")],
    out: Annotated[Path, typer.Option(help="Where the cligym task folders go.")] = Path("tasks/generated"),
    as_json: JsonOpt = False,
) -> None:
    """Make cligym tasks from Terminal-Bench or Harbor folders exported by `cligym tasks export`."""
    from cligym_env.interop import SPEC_FILE, import_task

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
