"""Reset latency of `cligym/Repair-v0`: a cold container start against the warm pool (`warm_pool=N`).

Each episode resets, runs one command, and then works for `--episode-seconds` (standing in for the agent's
turns, during which the pool starts the next container in the background). Reports the p50 and p90 of
`reset()` over `--n` episodes for each mode, and the ratio. Issue #14 asks for a reset p50 of 50 ms or less.

    python bench/reset_latency.py --n 30 --write
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gymnasium as gym  # noqa: E402
from step_latency import write_section  # noqa: E402

import cligym_env  # noqa: E402,F401  (registers the environments)
from cligym_env.runtime.pool import close_pools  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench:reset_latency:start -->", "<!-- bench:reset_latency:end -->"


def resets(task: Path, n: int, warm: int, episode_seconds: float) -> list[float]:
    env = gym.make("cligym/Repair-v0", task=str(task), warm_pool=warm, disable_env_checker=True)
    try:
        env.reset(seed=0)  # builds the image once, and fills the pool
        times = []
        for _ in range(n):
            time.sleep(episode_seconds)
            started = time.perf_counter()
            env.reset(seed=0)
            times.append(time.perf_counter() - started)
            env.step("echo ready")
        return times
    finally:
        env.close()
        close_pools()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", type=Path, default=ROOT / "tasks" / "generated" / "tabulate-wide-chars")
    parser.add_argument("--n", type=int, default=30)
    parser.add_argument("--episode-seconds", type=float, default=1.0)
    parser.add_argument("--warm", type=int, default=1, help="pool size for the warm rows (default 1)")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    rows = {
        "cold start (warm_pool=0)": resets(args.task, args.n, 0, args.episode_seconds),
        f"warm pool (warm_pool={args.warm})": resets(args.task, args.n, args.warm, args.episode_seconds),
    }
    cold = statistics.median(rows["cold start (warm_pool=0)"])
    command = shlex.join(["python", "bench/reset_latency.py", *sys.argv[1:]])
    lines = [
        "## Reset latency: cold start against the warm pool", "",
        f"`{command}` on {platform.machine()}, {datetime.date.today()}: {args.n} episodes of "
        f"`{args.task.name}` per row, each one command and {args.episode_seconds:g} s of agent time.", "",
        "| reset | p50 | p90 | p50 ratio to cold |", "| --- | ---: | ---: | ---: |",
    ]  # fmt: skip
    for label, times in rows.items():
        p50, p90 = statistics.median(times), statistics.quantiles(times, n=10)[-1]
        lines.append(f"| {label} | {p50 * 1000:.0f} ms | {p90 * 1000:.0f} ms | {cold / p50:.1f}x |")
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(section, start=START, end=END)


if __name__ == "__main__":
    main()
