"""`cligym run`, `cligym eval`, `cligym export`: play agents on tasks, score the runs, make SFT datasets."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cligym_env.commands.common import JsonOpt, emit, say
from cligym_env.errors import CligymError


def run(
    agent: Annotated[str, typer.Option(help="noop | oracle | heuristic | llm | hf:PATH.")],
    out: Annotated[Path, typer.Option(help="Run folder: receives run.json and trajectories.jsonl.")],
    tasks: Annotated[list[Path], typer.Option(help="Task folders, or folders of them (repeatable).")] = [  # noqa: B006
        Path("tasks/generated")
    ],
    split: Annotated[str, typer.Option(help="train | test | all (held out by gold project).")] = "all",
    split_by: Annotated[
        str, typer.Option(help="gold | fault: hold out gold projects, or fault families and repair shapes.")
    ] = "gold",
    limit: Annotated[int | None, typer.Option(help="At most this many tasks.")] = None,
    k: Annotated[int, typer.Option("--k", help="Samples per task (Pass@k).")] = 1,
    workers: Annotated[int, typer.Option(help="Episodes at once.")] = 1,
    seed: Annotated[int, typer.Option(help="Seed of sample 0; sample i uses seed+i.")] = 0,
    max_steps: Annotated[int | None, typer.Option(help="Override the tasks' max_steps.")] = None,
    episode_timeout: Annotated[
        float | None, typer.Option(help="Wall-clock seconds per episode (default: the task's).")
    ] = None,
    hard: Annotated[bool, typer.Option(help="Instructions without their hint.")] = False,
    warm_pool: Annotated[
        int, typer.Option(help="Containers per task image started ahead of time (faster resets with --k).")
    ] = 0,
    model: Annotated[str | None, typer.Option(help="llm: model name (default $OPENAI_MODEL).")] = None,
    base_url: Annotated[str | None, typer.Option(help="llm: endpoint (default $OPENAI_BASE_URL).")] = None,
    temperature: Annotated[float | None, typer.Option(help="llm/hf: sampling temperature.")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="llm/hf: most tokens per reply.")] = None,
    top_p: Annotated[float | None, typer.Option(help="llm: nucleus sampling.")] = None,
    request_timeout: Annotated[float | None, typer.Option(help="llm: seconds one request may take.")] = None,
    extra_body: Annotated[
        str | None,
        typer.Option(
            help="llm: JSON object sent in each request's body, e.g. '{\"chat_template_kwargs\": "
            '{"enable_thinking": false}}\' (vLLM).'
        ),
    ] = None,
    tool_calls: Annotated[
        bool,
        typer.Option(
            "--tool-calls",
            help="llm: native tool calling (a `bash` and a `submit` tool) instead of fenced replies.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Play an agent on tasks; append one trajectory per episode to RUN_DIR/trajectories.jsonl (resumable)."""
    import threading

    from cligym_env.rollout import RunConfig, run_rollouts
    from cligym_env.runtime import containers

    options = {"model": model, "base_url": base_url, "temperature": temperature, "max_tokens": max_tokens,
               "top_p": top_p, "timeout_seconds": request_timeout, "extra_body": json_object(extra_body, "--extra-body"),
               "tool_calls": tool_calls or None}  # fmt: skip
    config = RunConfig(
        agent=agent, tasks=[str(t) for t in tasks], out=str(out), split=split, split_by=split_by, limit=limit, k=k,
        workers=workers, seed=seed, max_steps=max_steps, episode_timeout=episode_timeout, hard=hard, warm_pool=warm_pool,
        options={key: value for key, value in options.items() if value is not None},
    )  # fmt: skip
    stop = threading.Event()
    try:
        summary = run_rollouts(config, progress=not as_json, stop=stop)
    except KeyboardInterrupt:
        stop.set()
        say("interrupted: finished episodes are saved; run the same command again to resume")
        raise typer.Exit(130) from None
    finally:  # whatever happened, no container of this run outlives it
        containers.gc(labels={containers.PROCESS_LABEL: containers.PROCESS_ID})
    failed = "".join(
        f"\n  [red]failed[/red] {f['task_id']}#{f['sample']}: {f['error']}" for f in summary["failed"]
    )
    emit(
        summary,
        as_json,
        f"{summary['played']} episodes played, {summary['skipped']} already done; resolved "
        f"{summary['resolved']}/{summary['played']}; policy errors {summary['policy_errors']} -> {out}{failed}",
    )
    if summary["failed"]:
        raise typer.Exit(1)


def json_object(text: str | None, option: str) -> dict | None:
    """The JSON object given to `option`, or None; one clear error if it is not one."""
    import json

    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CligymError(f"{option}: not JSON ({exc.msg} at character {exc.pos}): {text}") from None
    if not isinstance(value, dict):
        raise CligymError(f"{option}: a JSON object is needed, not {type(value).__name__}: {text}")
    return value


def register(app: typer.Typer) -> None:
    app.command("run")(run)
    app.command("eval")(evaluate)
    app.command("export")(export)


def evaluate(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders (several are compared side by side).")],
    k: Annotated[str, typer.Option("--k", help="Comma-separated k values for Pass@k.")] = "1,5",
    bootstrap: Annotated[int, typer.Option(help="Bootstrap resamples for the 95% CIs.")] = 1000,
    plots: Annotated[bool, typer.Option(help="Write PNG plots next to report.md.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Pass@1 / Pass@k (unbiased estimator) with bootstrap CIs, by fault family, category, gold and difficulty;
    writes report.md (and plots) into each run folder."""
    from cligym_env.evaluate import evaluate_runs

    try:
        ks = sorted({int(x) for x in k.split(",") if x.strip()})
    except ValueError:
        raise CligymError(f"--k takes comma-separated integers, not '{k}'") from None
    result = evaluate_runs(run_dirs, ks=ks, n_bootstrap=bootstrap, plots=plots)
    if as_json:
        emit(result["runs"], True)
    else:  # plain Markdown on stdout, so it can be pasted or redirected
        print(result["table"], end="")
        say(f"report.md written in {', '.join(map(str, run_dirs))}")


def export(
    run_dirs: Annotated[list[Path], typer.Argument(help="Run folders to take trajectories from.")],
    out: Annotated[Path, typer.Option(help="Dataset folder (save_to_disk layout + data.jsonl + README.md).")],
    resolved_only: Annotated[bool, typer.Option(help="Keep only resolved episodes.")] = True,
    min_steps: Annotated[int, typer.Option(help="Drop episodes with fewer commands.")] = 1,
    max_steps: Annotated[int | None, typer.Option(help="Drop episodes with more commands.")] = None,
    allow_cheating: Annotated[bool, typer.Option(help="Keep episodes the cheating detector flags.")] = False,
    near_duplicate: Annotated[
        float,
        typer.Option(
            help="Jaccard similarity of command shingles at which a same-task episode is a duplicate."
        ),
    ] = 0.9,
    as_json: JsonOpt = False,
) -> None:
    """Filter trajectories (resolved, length, cheating, duplicates) into a Hugging Face dataset for SFT."""
    from cligym_env.export import ExportFilters, export_runs

    filters = ExportFilters(
        resolved_only=resolved_only, min_steps=min_steps, max_steps=max_steps, allow_cheating=allow_cheating,
        near_duplicate=near_duplicate,
    )  # fmt: skip
    result = export_runs(run_dirs, Path(out), filters)
    dropped = ", ".join(f"{reason} {n}" for reason, n in result["dropped"].items()) or "none"
    emit(
        result, as_json, f"kept {result['kept']} of {result['total']} episodes (dropped: {dropped}) -> {out}"
    )
