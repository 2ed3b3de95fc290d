"""`cligym generate`: make tasks by environment inversion."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cligym_env.commands.common import JsonOpt, console, emit, say
from cligym_env.errors import CligymError


def generate(
    gold: Annotated[
        list[str] | None,
        typer.Option("--gold", help="Gold names or folders (repeat); default: every gold."),
    ] = None,
    n: Annotated[
        int, typer.Option("--n", help="Stop when the output folder's journal holds this many accepted tasks.")
    ] = 10,
    inverter: Annotated[
        str, typer.Option(help="heuristic (fault families) or llm (an agent over an OpenAI-compatible API).")
    ] = "heuristic",
    workers: Annotated[int, typer.Option(help="Attempts run in parallel.")] = 1,
    out: Annotated[
        Path, typer.Option(help="Folder receiving task folders (and .generate/journal.jsonl).")
    ] = Path("tasks/generated"),
    budget: Annotated[
        str | None,
        typer.Option(help="Also stop after N attempts (`500`) or a time (`30m`, `2h`), or both (`500,30m`)."),
    ] = None,
    family: Annotated[
        list[str] | None,
        typer.Option(
            "--family", help="Heuristic inverter: only these fault families (repeat); default: all."
        ),
    ] = None,
    composites: Annotated[
        float,
        typer.Option(
            help="Heuristic inverter: least share of proposals that combine 2-3 faults already validated alone "
            "on the gold (once it has two families of them); it rises to 0.85 on a gold whose recent single "
            "faults flip nothing. 0 or 1 is kept as given."
        ),
    ] = 0.4,
    statements: Annotated[
        str,
        typer.Option(
            help="Problem statements: template, or llm (written by --model, leak-checked, template fallback)."
        ),
    ] = "template",
    max_fail_share: Annotated[
        float,
        typer.Option(
            help="Refuse candidates that fail at least this share of the gold's tests ('sweeping'; 1.0 refuses "
            "none): 0.9 steers a run to faults that keep part of the suite passing."
        ),
    ] = 1.0,
    seed: Annotated[
        int, typer.Option(help="Base seed; attempt seeds derive from it, the gold and the attempt number.")
    ] = 0,
    model: Annotated[str | None, typer.Option(help="LLM inverter: model name.")] = None,
    base_url: Annotated[
        str | None, typer.Option(help="LLM inverter: API base URL (default $OPENAI_BASE_URL).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Break gold environments until tests flip, validate each candidate, write the tasks. Resumable: run the
    same command again after an interruption and it continues where it stopped."""
    from cligym_env.gold import list_golds, load_gold
    from cligym_env.inversion.generate import Budget, Generator

    golds = [load_gold(g) for g in gold] if gold else list_golds()
    if not golds:
        raise CligymError("no gold environments found (tasks/gold is empty?)")
    if inverter == "heuristic":
        from cligym_env.inversion.families import BY_NAME
        from cligym_env.inversion.heuristic import HeuristicInverter

        unknown = sorted(set(family or []) - set(BY_NAME))
        if unknown:
            raise CligymError(f"unknown fault families {unknown}; known: {', '.join(sorted(BY_NAME))}")
        if not 0.0 <= composites <= 1.0:
            raise CligymError(f"--composites must be between 0 and 1, not {composites}")
        chosen = tuple(BY_NAME[f] for f in family) if family else tuple(BY_NAME.values())
        inv = HeuristicInverter(chosen, composite_share=composites)
    elif inverter == "llm":
        from cligym_env.inversion.llm_inverter import LLMInverter

        inv = LLMInverter.from_options(model=model, base_url=base_url)
    else:
        raise CligymError(f"unknown inverter '{inverter}' (use heuristic or llm)")
    writer = None
    if statements == "llm":
        from agents.llm import LLMPolicy
        from cligym_env.inversion.statement import LLMStatementWriter

        policy = LLMPolicy(**{k: v for k, v in {"model": model, "base_url": base_url}.items() if v})
        writer = LLMStatementWriter(policy.client, policy.config.model)
    elif statements != "template":
        raise CligymError(f"unknown statement writer '{statements}' (use template or llm)")
    generator = Generator(golds, out, inv, seed=seed, progress=say, writer=writer)
    generator.max_fail_share = max_fail_share
    # `kill` (SIGTERM) stops like Ctrl-C: running attempts end, containers are removed, the journal stays whole.
    signal.signal(signal.SIGTERM, _interrupt)
    target = max(n - generator.total_accepted, 0)
    with Progress(
        TextColumn("[bold]generate[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        job = bar.add_task("tasks", total=target or 1, status="")

        def on_entry(entry: dict, summary) -> None:
            rejected = ", ".join(f"{k} {v}" for k, v in summary.reasons.most_common(4))
            bar.update(job, completed=summary.accepted, status=f"{summary.attempts} attempts; {rejected}")

        try:
            summary = generator.run(n, workers=workers, budget=Budget.parse(budget), on_entry=on_entry)
        finally:  # the index lists what this run wrote, also when it was interrupted
            from cligym_env.index import refresh_indexes

            refresh_indexes([out])
    data = summary.as_dict()
    emit(data, as_json, f"accepted {data['accepted']} of {data['attempts']} attempts "
         f"({data['tasks_per_hour']}/h); rejected: {data['rejected']}; journal total {data['total_accepted_in_journal']}")  # fmt: skip


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    app.command("generate")(generate)
