"""Many golds at once: `cligym gold verify --all` in parallel under a progress bar, and the catalogue table
(`tasks/gold/README.md`) and disk/build-time totals (`BENCHMARKS.md`) made from the specs and records.

    >>> print(catalogue_table(list_golds()))   # doctest: +SKIP
    | name | language | version | tests | test s | image MB | tags |
    ...
"""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from cligym_env.errors import CligymError
from cligym_env.gold import Gold, GoldRecord, repo_root

CATALOGUE_START, CATALOGUE_END = "<!-- catalogue:start -->", "<!-- catalogue:end -->"
BENCH_START, BENCH_END = "<!-- gold_catalogue:start -->", "<!-- gold_catalogue:end -->"
COLUMNS = ("name", "language", "version", "tests", "test s", "image MB", "tags")


def verify_many(
    golds: list[Gold], *, runs: int = 1, workers: int = 2, probe: bool = True, console: Console | None = None
) -> list[tuple[str, GoldRecord | None, str | None]]:
    """Verify `golds` with `workers` threads; returns (name, record or None, error or None) in input order.

    One failing gold does not stop the others: its error is printed and returned.
    """
    from cligym_env.gold_image import verify_gold

    console = console or Console(stderr=True)
    results: dict[str, tuple[GoldRecord | None, str | None]] = {}
    lock = threading.Lock()
    columns = (
        TextColumn("[bold]verify[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task("", total=len(golds))
        status: dict[str, str] = {}

        def show(name: str, message: str) -> None:
            with lock:
                status[name] = message.removeprefix(f"{name}: ")[:60]
                bar.update(task, description="  ".join(f"{n}: {m}" for n, m in status.items()))

        def one(gold: Gold) -> None:
            try:
                record = verify_gold(gold, runs=runs, probe=probe, progress=lambda m: show(gold.name, m))
                results[gold.name] = (record, None)
                line = (
                    f"[green]ok[/green] {gold.name}: {len(record.passing)}/{record.n_tests} passing, "
                    f"{len(record.flaky)} flaky, build {record.build_seconds or 0:.0f}s, "
                    f"tests {record.test_seconds:.0f}s, {record.image_size_mb or 0:.0f} MB"
                )
                if record.flaky:
                    line += f" (flaky: {', '.join(record.flaky[:5])}{' …' if len(record.flaky) > 5 else ''})"
            except CligymError as exc:
                results[gold.name] = (None, str(exc))
                line = f"[red]failed[/red] {gold.name}: " + "\n".join(str(exc).splitlines()[:20])
            with lock:
                status.pop(gold.name, None)
                bar.console.print(line, highlight=False)
                bar.advance(task)

        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            for future in as_completed([pool.submit(one, gold) for gold in golds]):
                future.result()
    return [(g.name, *results[g.name]) for g in golds]


def catalogue_rows(golds: list[Gold]) -> list[dict]:
    """One row per gold: spec fields and what its verified.json recorded (None where never verified)."""
    rows = []
    for gold in golds:
        record = gold.record()
        rows.append(
            {
                "name": gold.name,
                "language": gold.spec.language,
                "version": gold.spec.version,
                "source": gold.spec.source.kind,
                "tests": len(record.passing) if record else None,
                "test_seconds": record.test_seconds if record else None,
                "build_seconds": record.build_seconds if record else None,
                "image_size_mb": record.image_size_mb if record else None,
                "tags": gold.spec.tags,
                "probed": bool(record and record.runtime),
            }
        )
    return rows


def catalogue_table(golds: list[Gold]) -> str:
    """The catalogue as a Markdown table, with a summary line under it."""
    rows = catalogue_rows(golds)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = [
            f"[{r['name']}]({r['name']}/gold.yaml)",
            r["language"],
            r["version"],
            _cell(r["tests"]),
            _cell(r["test_seconds"]),
            _cell(r["image_size_mb"]),
            ", ".join(r["tags"]),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    languages: dict[str, int] = {}
    for r in rows:
        languages[r["language"]] = languages.get(r["language"], 0) + 1
    summary = ", ".join(f"{n} {lang}" for lang, n in sorted(languages.items(), key=lambda kv: -kv[1]))
    tests = sum(r["tests"] or 0 for r in rows)
    lines += ["", f"{len(rows)} golds ({summary}); {tests} passing tests recorded."]
    return "\n".join(lines)


def _cell(value) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def replace_between(text: str, start: str, end: str, body: str) -> str:
    """`text` with what lies between the `start` and `end` markers replaced by `body` (markers appended
    at the end when absent)."""
    block = f"{start}\n{body.strip()}\n{end}"
    if start in text and end in text:
        return re.sub(re.escape(start) + r".*?" + re.escape(end), lambda _m: block, text, count=1, flags=re.S)
    return text.rstrip("\n") + "\n\n" + block + "\n"


def write_catalogue(golds: list[Gold], path: Path | None = None) -> Path:
    """Regenerate the table between the catalogue markers of `tasks/gold/README.md`."""
    path = path or repo_root() / "tasks" / "gold" / "README.md"
    text = path.read_text() if path.exists() else _README_HEAD
    path.write_text(replace_between(text, CATALOGUE_START, CATALOGUE_END, catalogue_table(golds)))
    return path


def disk_totals(golds: list[Gold]) -> dict:
    """Bytes the gold images take together, layers shared once: the base, each layer's own bytes (its size
    minus its parent's) and each gold's own bytes. Needs the images on this machine."""
    from cligym_env.gold_image import parent_chain
    from cligym_env.runtime.base import ensure_base_image
    from cligym_env.runtime.containers import docker_client

    client = docker_client()
    base = ensure_base_image()

    def size(name: str) -> int:
        return client.images.get(name).attrs["Size"]

    own: dict[str, int] = {base: size(base)}
    images = []
    for gold in golds:
        record = gold.record()
        if record is None:
            continue
        chain = [*parent_chain(gold, base), record.image]
        for below, image in zip(chain, chain[1:], strict=False):
            own.setdefault(image, size(image) - size(below))
        images.append(record.image)
    golds_b = sum(own[i] for i in images)
    return {
        "base_mb": round(own[base] / 1e6),
        "layers_mb": round((sum(own.values()) - own[base] - golds_b) / 1e6),
        "golds_mb": round(golds_b / 1e6),
        "total_mb": round(sum(own.values()) / 1e6),
        "sum_of_image_sizes_mb": round(sum(size(i) for i in images) / 1e6),
    }


def write_benchmarks(golds: list[Gold], path: Path | None = None) -> Path:
    """Regenerate the gold section of BENCHMARKS.md: total disk and build time of every verified gold."""
    path = path or repo_root() / "BENCHMARKS.md"
    rows = catalogue_rows(golds)
    verified = [r for r in rows if r["tests"] is not None]
    disk = disk_totals(golds)
    timed = sum(1 for r in verified if r["build_seconds"])
    body = "\n".join(
        [
            "## Gold catalogue: disk and build time",
            "",
            "Made by `cligym gold catalogue --write` from the records `cligym gold verify` wrote (golds "
            f"verified two at a time on a 2-core host shared with other work; Docker {_docker_version()}, "
            f"storage driver {_storage_driver()}).",
            "",
            "| what | value |",
            "|---|---|",
            f"| golds verified | {len(verified)} of {len(rows)} |",
            f"| total build time (sum of each gold's last fresh build, {timed} golds timed) "
            f"| {sum(r['build_seconds'] or 0 for r in verified) / 60:.1f} min |",
            f"| total test time (one run each) | {sum(r['test_seconds'] or 0 for r in verified) / 60:.1f} min |",
            f"| disk, layers shared once (base + runtime/deb layers + golds) | {disk['total_mb'] / 1e3:.2f} GB |",
            f"| of which base image | {disk['base_mb']} MB |",
            f"| of which language runtime and deb layers | {disk['layers_mb']} MB |",
            f"| of which the golds' own layers | {disk['golds_mb']} MB |",
            f"| sum of image sizes if nothing were shared | {disk['sum_of_image_sizes_mb'] / 1e3:.1f} GB |",
            "",
            "Build times are wall-clock seconds of `docker build` plus the host-side downloads and wheel "
            "builds, with 2 golds building at once on 2 shared cores; a gold whose image already existed when "
            "it was verified records none (language runtime and deb layers are not counted). Per-gold "
            "numbers are in the catalogue, `tasks/gold/README.md`; `docker system df -v` shows the same "
            "sharing from Docker's side.",
        ]
    )
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    path.write_text(replace_between(text, BENCH_START, BENCH_END, body))
    return path


def _docker_version() -> str:
    from cligym_env.runtime.containers import docker_client

    return str(docker_client().version().get("Version", "?"))


def _storage_driver() -> str:
    from cligym_env.runtime.containers import docker_client

    return str(docker_client().info().get("Driver", "?"))


_README_HEAD = """# Gold environments

Each folder is one gold: a real project pinned to an exact version (`gold.yaml`), a `Dockerfile` that builds
it offline from files fetched on the host, and `verified.json`, written by `cligym gold verify`: the tests
that pass in a fresh container and what they use at run time (the probe). The table below is generated by
`cligym gold catalogue --write`; do not edit it by hand.

"""
