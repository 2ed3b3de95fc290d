"""How long one trivial shell step takes: a ContainerSession against the ways people otherwise run commands.

Each row runs `true` N times in the same container and reports p50/p95 wall-clock milliseconds:
  - `env.step("true")` on `cligym/Repair-v0` (a real task): what an agent pays per command;
  - `ContainerSession.run("true")`: the env's persistent bash on one attached exec socket;
  - `docker exec <cid> true`: the Docker CLI in a subprocess (a new exec per command, as most harnesses do);
  - docker SDK `container.exec_run("true")`: a new exec per command without the CLI's process start.

    python bench/step_latency.py            # print the table
    python bench/step_latency.py --write    # ...and update BENCHMARKS.md between the step_latency markers
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import gymnasium as gym

import cligym_env  # noqa: F401  (registers the environments)
from cligym_env.runtime import containers

BENCHMARKS = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
DEFAULT_TASK = (
    Path(__file__).resolve().parents[1] / "tasks" / "generated" / "python-slugify-missing-dependency"
)
START, END = "<!-- step_latency:start -->", "<!-- step_latency:end -->"


@contextmanager
def steppers(task: Path) -> Iterator[list[tuple[str, Callable[[], None]]]]:
    """(row label, one step) pairs, all running `true` in the container of one Repair-v0 episode on `task`."""
    env = gym.make("cligym/Repair-v0", task=task, max_steps=1_000_000, disable_env_checker=True)
    try:
        env.reset(seed=0)
        session = env.unwrapped._session
        container = session.container
        yield [
            ('`env.step("true")` (Repair-v0)', lambda: env.step("true")),
            ('`ContainerSession.run("true")`', lambda: session.run("true")),
            (
                "`docker exec <cid> true` (CLI subprocess)",
                lambda: subprocess.run(["docker", "exec", container.id, "true"], check=True),
            ),
            ('docker SDK `container.exec_run("true")`', lambda: container.exec_run("true")),
        ]
    finally:
        env.close()


def time_ms(step: Callable[[], None], n: int, warmup: int = 10) -> list[float]:
    """Wall-clock milliseconds of `n` calls of `step`, after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    timings = []
    for _ in range(n):
        start = time.perf_counter()
        step()
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def percentile(values: list[float], q: int) -> float:
    """The q-th percentile (inclusive method, as numpy's default)."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(rows: list[tuple[str, list[float]]], n: int, command: str) -> str:
    """The markdown section: the table, the command that made it, the date and the machine."""
    base_p50 = percentile(rows[0][1], 50)
    lines = [
        f"### Step latency (`true`, N={n} each, same container)",
        "",
        "| how a step runs | p50 ms | p95 ms | p50 / env step p50 |",
        "| --- | ---: | ---: | ---: |",
    ]
    for label, timings in rows:
        p50, p95 = percentile(timings, 50), percentile(timings, 95)
        lines.append(f"| {label} | {p50:.2f} | {p95:.2f} | {p50 / base_p50:.1f}x |")
    docker_version = containers.docker_client().version().get("Version", "?")
    lines += [
        "",
        f"Made by `{command}` on {datetime.date.today().isoformat()}; Docker {docker_version}, "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.machine()}.",
    ]
    return "\n".join(lines)


def write_section(section: str, path: Path = BENCHMARKS, start: str = START, end: str = END) -> None:
    """Replace the text between the `start`/`end` markers in `path` (create the file or section if missing)."""
    from cligym_env.golds.catalogue import replace_between

    text = path.read_text() if path.exists() else "# Benchmarks\n"
    path.write_text(replace_between(text, start, end, section))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="timed steps per row (default 300)")
    parser.add_argument(
        "--task", type=Path, default=DEFAULT_TASK, help="task folder whose image the steps run in"
    )
    parser.add_argument("--write", action="store_true", help=f"update {BENCHMARKS.name}")
    args = parser.parse_args()
    with steppers(args.task) as rows:
        results = [(label, time_ms(step, args.n)) for label, step in rows]
    command = shlex.join(["python", "bench/step_latency.py", *sys.argv[1:]])
    section = report(results, args.n, command)
    print(section)
    if args.write:
        write_section(section)
        print(f"\nwrote {BENCHMARKS}")


if __name__ == "__main__":
    main()
