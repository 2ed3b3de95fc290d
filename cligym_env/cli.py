"""The `cligym` command line: `cligym --help` lists the commands."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from cligym_env.commands.common import JsonOpt, console
from cligym_env.commands.common import emit as _emit
from cligym_env.commands.common import say as _say
from cligym_env.errors import CligymError
from cligym_env.gold import repo_root

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="CLI-Gym: environment-repair tasks for terminal agents."
)
base_app = typer.Typer(no_args_is_help=True, help="The offline base image.")
gold_app = typer.Typer(no_args_is_help=True, help="Gold environments: real projects whose tests pass.")
app.add_typer(base_app, name="base")
app.add_typer(gold_app, name="gold")

# Commands that start containers: before they do, containers of cligym processes that died are removed.
STARTS_CONTAINERS = {"gold", "validate", "solve", "demo", "shell", "run", "generate", "tasks"}


@app.callback()
def _before_command(ctx: typer.Context) -> None:
    """Remove the containers of ended cligym processes on this host before a command that starts its own
    (what a killed process's watchdog could not: it was killed too). Without Docker, the command says so."""
    if ctx.invoked_subcommand not in STARTS_CONTAINERS:
        return
    import contextlib

    import docker.errors

    from cligym_env.errors import DockerUnavailableError
    from cligym_env.runtime.containers import reap_orphans

    with contextlib.suppress(DockerUnavailableError, docker.errors.DockerException):  # the command reports it
        reap_orphans()


@base_app.command("build")
def base_build(
    mirror: Annotated[
        str | None,
        typer.Option(
            help="Debian mirror URL (default: $CLIGYM_DEBIAN_MIRROR, else this machine's apt sources)."
        ),
    ] = None,
    from_image: Annotated[
        str | None,
        typer.Option("--from", help="Start from this image instead of debootstrap (needs a registry)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Rebuild even if the image exists.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Make the base image offline (debootstrap + docker import); cached, so the second build takes seconds."""
    from cligym_env.runtime.base import build_base_image

    image = build_base_image(mirror=mirror, from_image=from_image, force=force, progress=_say)
    _emit({"image": image}, as_json, f"base image: [bold]{image}[/bold]")


@gold_app.command("list")
def gold_list(as_json: JsonOpt = False) -> None:
    """List the gold environments under tasks/gold (or $CLIGYM_GOLD_ROOT)."""
    from cligym_env.gold import list_golds

    rows = []
    for gold in list_golds():
        record = gold.record()
        rows.append(
            {
                "name": gold.name,
                "version": gold.spec.version,
                "language": gold.spec.language,
                "passing_tests": len(record.passing) if record else None,
                "test_seconds": record.test_seconds if record else None,
                "description": gold.spec.description,
            }
        )
    if as_json:
        _emit(rows, True)
        return
    table = Table("name", "version", "language", "passing tests", "test s", "description")
    for r in rows:
        table.add_row(
            r["name"],
            r["version"],
            r["language"],
            str(r["passing_tests"] or "-"),
            str(r["test_seconds"] or "-"),
            r["description"],
        )
    Console().print(table)


def _golds(refs: list[str], all_: bool):
    from cligym_env.gold import list_golds, load_gold

    if all_:
        return list_golds()
    if not refs:
        raise CligymError("name at least one gold (a name under tasks/gold or a folder path), or pass --all")
    return [load_gold(r) for r in refs]


@gold_app.command("build")
def gold_build(
    refs: Annotated[list[str] | None, typer.Argument(help="Gold names or folders.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every gold under tasks/gold.")] = False,
    force: Annotated[
        bool, typer.Option(help="Rebuild even if an image with the same content hash exists.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Build gold images offline (downloads happen on the host first)."""
    from cligym_env.gold_image import build_gold

    out = []
    for gold in _golds(refs or [], all_):
        image, seconds = build_gold(gold, force=force, progress=_say)
        out.append({"gold": gold.name, "image": image, "build_seconds": seconds})
        _emit(
            None,
            False,
            f"{gold.name}: [bold]{image}[/bold]" + (f" (built in {seconds}s)" if seconds else " (cached)"),
        )
    _emit(out, as_json)


@gold_app.command("verify")
def gold_verify(
    refs: Annotated[list[str] | None, typer.Argument(help="Gold names or folders.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every gold under tasks/gold.")] = False,
    runs: Annotated[
        int, typer.Option(help="Test runs; tests whose outcome differs are flaky and left out.")
    ] = 1,
    workers: Annotated[int, typer.Option(help="Golds built and verified at once.")] = 2,
    probe: Annotated[
        bool, typer.Option(help="Run the tests once more under the runtime probe (strace) and record it.")
    ] = True,
    as_json: JsonOpt = False,
) -> None:
    """Build each gold, run its tests in fresh containers, record the passing test ids (verified.json).

    Golds run in parallel (--workers) under a progress bar; a gold that fails is reported and the others
    go on. The exit code is 1 if any gold failed.
    """
    from cligym_env.golds.catalogue import verify_many

    golds = _golds(refs or [], all_)
    results = verify_many(golds, runs=runs, workers=workers, probe=probe, console=console)
    out = []
    for name, record, error in results:
        if record is None:
            out.append({"gold": name, "error": error})
            continue
        out.append(
            record.model_dump(exclude={"passing", "failing", "runtime"})
            | {"n_passing": len(record.passing), "n_failing": len(record.failing)}
        )
    _emit(out, as_json)
    failed = [name for name, record, _ in results if record is None]
    if failed:
        raise CligymError(f"{len(failed)} of {len(results)} golds failed to verify: {', '.join(failed)}")


@gold_app.command("new")
def gold_new(
    ref: Annotated[str, typer.Argument(help="A PyPI release: NAME==VERSION.")],
    root: Annotated[
        Path | None,
        typer.Option(
            help="Folder of golds to write into (default: ./tasks/gold if it exists, else cligym's)."
        ),
    ] = None,
    verify: Annotated[bool, typer.Option(help="Build the image and verify the suite now.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Make a gold from a PyPI release: fetch its sdist, find its tests and test dependencies, write gold.yaml and
    the Dockerfile, build the image offline and verify the suite (crates and Debian sources: by hand for now)."""
    from cligym_env.gold import default_gold_root, load_gold
    from cligym_env.gold_image import verify_gold
    from cligym_env.golds.scaffold import scaffold_pypi

    if ":" in ref or "==" not in ref:
        raise CligymError(f"'{ref}': give a PyPI release as NAME==VERSION (crate and Debian golds: write gold.yaml "
                          "by hand, as tasks/gold/rust-semver and tasks/gold/perl-try-tiny do)")  # fmt: skip
    folder = scaffold_pypi(ref, root or default_gold_root(), _say)
    result = {"gold": folder.name, "folder": str(folder), "verified": False}
    if verify:
        try:
            record = verify_gold(load_gold(folder), progress=_say)
        except CligymError as exc:
            raise CligymError(
                f"{folder / 'gold.yaml'} is written, but the suite does not pass yet: {exc}\nNext: edit its "
                "test_command (deselect what needs the network or missing data: --deselect ID, -k 'not NAME') or "
                f"its wheels (test dependencies), then run `cligym gold verify {folder.name}`"
            ) from None
        result |= {"verified": True, "image": record.image, "n_passing": len(record.passing),
                   "n_failing": len(record.failing)}  # fmt: skip
    human = f"wrote {folder}" + (
        f"; {result['n_passing']} tests pass ({result['n_failing']} fail, left out of tasks)"
        if verify
        else ""
    )
    _emit(result, as_json, human)


@gold_app.command("catalogue")
def gold_catalogue(
    write: Annotated[
        bool, typer.Option("--write", help="Write the table into tasks/gold/README.md and BENCHMARKS.md.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """The gold catalogue table (name, language, version, tests, test seconds, image size, tags), made from
    the specs and their verified.json, so it never drifts; --write puts it in tasks/gold/README.md."""
    from cligym_env.gold import list_golds
    from cligym_env.golds.catalogue import catalogue_rows, catalogue_table, write_benchmarks, write_catalogue

    golds = list_golds()
    if write:
        path = write_catalogue(golds)
        bench = write_benchmarks(golds)
        _emit(None, False, f"wrote {path} and the gold section of {bench}")
    if as_json:
        _emit(catalogue_rows(golds), True)
    elif not write:
        print(catalogue_table(golds))


@app.command("validate")
def validate(
    tasks: Annotated[list[Path], typer.Argument(help="Task folders, or folders of task folders.")],
    sample: Annotated[int | None, typer.Option(help="Validate a random sample of this many tasks.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the sample.")] = 0,
    workers: Annotated[int, typer.Option(help="Tasks validated at once.")] = 1,
    retire: Annotated[
        Path | None,
        typer.Option(
            help="Re-check tasks against the trusted harness: a task whose broken image still fails some of its "
            "FAIL_TO_PASS tests is rewritten to what really fails (lists and statement); one that fails none "
            "(what failed was the old harness, not the project) is moved into this folder with a RETIRED.md."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rebuild each task; FAIL_TO_PASS must fail, PASS_TO_PASS pass, and solution.sh must repair both."""
    from concurrent.futures import ThreadPoolExecutor

    from cligym_env.inversion.validate import refresh_task, retire_task
    from cligym_env.task import list_tasks

    found = [t for path in tasks for t in list_tasks(path)]
    if not found:
        raise CligymError(f"no task folders (with task.yaml) in {', '.join(map(str, tasks))}")
    if sample is not None:
        found = random.Random(seed).sample(found, min(sample, len(found)))
    results = []
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for task, res in zip(found, pool.map(_validate_one, found), strict=True):
            refreshed = retire is not None and refresh_task(task, res)
            retired = (
                retire is not None and not refreshed and res.broken_passes and retire_task(task, retire, res)
            )
            results.append({"id": task.id, "ok": res.ok, "problems": res.problems, "seconds": res.seconds,
                            "retired": bool(retired), "refreshed": refreshed})  # fmt: skip
            mark = ("[green]ok[/green]" if res.ok else "[yellow]REWRITTEN[/yellow]" if refreshed
                    else "[yellow]RETIRED[/yellow]" if retired else "[red]FAILED[/red]")  # fmt: skip
            problems = "".join(f"\n  - {p}" for p in res.problems)
            _emit(None, False, f"{mark} {task.id} ({res.seconds}s){problems}")
    if retire is not None:
        from cligym_env.index import refresh_indexes

        refresh_indexes(tasks)
    _emit(results, as_json)
    if not all(r["ok"] or r["retired"] or r["refreshed"] for r in results):
        raise typer.Exit(1)


def _validate_one(task):
    """`validate_task`, with an error (a failed build, a Docker hiccup) reported as that task's problem."""
    from cligym_env.inversion.validate import ValidationResult, validate_task

    try:
        return validate_task(task, progress=_say)
    except CligymError as exc:
        return ValidationResult(task.id, problems=[f"could not validate: {exc}"])
    except Exception as exc:  # noqa: BLE001 - one task's crash must not lose the others' results
        return ValidationResult(task.id, problems=[f"could not validate: {type(exc).__name__}: {exc}"])


def _play(task_dir: Path, agent: str) -> dict:
    """One Repair-v0 episode with a built-in agent: `oracle` replays solution.sh, `noop` submits at once."""
    import gymnasium as gym

    import cligym_env  # noqa: F401  (registers the environments)
    from cligym_env.task import load_task

    task = load_task(task_dir)
    if agent not in ("oracle", "noop"):
        raise CligymError(f"unknown agent '{agent}' (use oracle or noop)")
    commands = [task.solution_script()] if agent == "oracle" else []
    env = gym.make("cligym/Repair-v0", task=task)
    try:
        env.reset(seed=0)
        for command in commands:
            env.step(command)
        _, reward, _, _, info = env.step("submit")
    finally:
        env.close()
    return {"task": task.id, "agent": agent, "reward": reward, "tests": info["tests"]}


@app.command("solve")
def solve(
    task: Annotated[Path, typer.Argument(help="A task folder.")],
    agent: Annotated[
        str, typer.Option(help="oracle (replays solution.sh) or noop (submits at once).")
    ] = "oracle",
    as_json: JsonOpt = False,
) -> None:
    """Play one Repair-v0 episode on a task with a built-in agent and print the reward."""
    data = _play(task, agent)
    _emit(
        data,
        as_json,
        f"{data['task']}: agent {agent} -> reward [bold]{data['reward']}[/bold] {data['tests']}",
    )


DEMO_TASK = repo_root() / "tasks" / "generated" / "python-slugify-missing-dependency"


@app.command("demo")
def demo(
    task: Annotated[Path, typer.Argument(help="The task to play.")] = DEMO_TASK,
    as_json: JsonOpt = False,
) -> None:
    """The built-in default job: make the base image and the task's gold (offline), validate the task, then
    play it with the noop agent (expect reward 0) and the oracle (expect reward 1)."""
    from cligym_env.inversion.validate import validate_task
    from cligym_env.runtime.base import build_base_image
    from cligym_env.task import load_task

    _say(f"base image: {build_base_image(progress=_say)}")
    loaded = load_task(task)
    check = validate_task(loaded, progress=_say)
    if not check.ok:
        raise CligymError(f"task {loaded.id} did not validate: {'; '.join(check.problems)}")
    _say(
        f"{loaded.id}: valid ({len(loaded.spec.fail_to_pass)} FAIL_TO_PASS, {len(loaded.spec.pass_to_pass)} PASS_TO_PASS)"
    )
    results = [_play(task, agent) for agent in ("noop", "oracle")]
    for r in results:
        _emit(None, False, f"{r['task']}: agent {r['agent']:<6} -> reward [bold]{r['reward']}[/bold]")
    _emit(results, as_json)


@app.command("shell")
def shell(task: Annotated[Path, typer.Argument(help="A task folder.")]) -> None:
    """Play a task yourself: type commands into the same session an agent gets; `submit` runs the tests."""
    import gymnasium as gym

    import cligym_env  # noqa: F401
    from cligym_env.task import load_task

    env = gym.make("cligym/Repair-v0", task=load_task(task), disable_env_checker=True)
    try:
        observation, _ = env.reset()
        console.print(observation, highlight=False, markup=False)
        console.print("[dim](type shell commands; `submit` runs the tests; Ctrl-D quits)[/dim]")
        while True:
            try:
                command = input("$ ")
            except EOFError:
                break
            if not command.strip():
                continue
            observation, reward, terminated, truncated, info = env.step(command)
            print(
                info.get("output", observation),
                end="" if str(info.get("output", "")).endswith("\n") else "\n",
            )
            if terminated or truncated:
                console.print(observation, highlight=False, markup=False)
                break
    finally:
        env.close()


@app.command("gc")
def gc(
    orphans: Annotated[
        bool,
        typer.Option(
            "--orphans",
            help="Only those of cligym processes on this host that have ended (safe while others run).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Remove every container and network this project started (any process's, running or not), or with
    --orphans only those whose process has ended."""
    from cligym_env.runtime.containers import gc as remove_all
    from cligym_env.runtime.containers import reap_orphans

    n = reap_orphans() if orphans else remove_all()
    _emit({"removed": n}, as_json, f"removed {n} containers/networks")


# Command groups that live in their own modules (see cligym_env/commands/__init__.py): one line each.
REGISTRARS: list[str] = ["rollout", "tasks", "task_sets", "generate"]


def _register_groups() -> None:
    import importlib

    for module in REGISTRARS:
        importlib.import_module(f"cligym_env.commands.{module}").register(app)


_register_groups()


def main() -> None:
    """Entry point: run the app; a CligymError is printed once, without a traceback."""
    import docker.errors

    try:
        code = app(standalone_mode=False)  # a command's `typer.Exit(n)` comes back as n here
        if isinstance(code, int) and code:
            sys.exit(code)
    except CligymError as exc:
        console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
        sys.exit(1)
    except docker.errors.DockerException as exc:
        console.print(f"[red]error:[/red] Docker: {escape(str(exc))}", highlight=False)
        sys.exit(1)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        console.print("aborted")
        sys.exit(130)
    except Exception as exc:  # click's usage errors (typer ships its own click, so match by shape)
        if callable(getattr(exc, "show", None)) and isinstance(getattr(exc, "exit_code", None), int):
            exc.show()
            sys.exit(exc.exit_code)
        raise


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


if __name__ == "__main__":
    main()
