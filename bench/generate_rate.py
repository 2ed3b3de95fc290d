"""Validated tasks per hour from `cligym generate`, with 1 and 2 workers, and why candidates were rejected.

Both rows run the same attempts (same golds, same seed, same number of attempts) into fresh folders, after one
warm-up pass that builds and probes the golds, so only inversion work is timed.

    python bench/generate_rate.py                       # print the table
    python bench/generate_rate.py --write               # ...and update BENCHMARKS.md (generate_rate section)
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_latency import write_section  # noqa: E402

from cligym_env.gold import load_gold  # noqa: E402
from cligym_env.inversion.generate import Budget, Generator  # noqa: E402
from cligym_env.inversion.heuristic import HeuristicInverter  # noqa: E402
from cligym_env.inversion.pipeline import GoldWorkspace  # noqa: E402

DEFAULT_GOLDS = ("python-slugify", "markupsafe", "tabulate", "toolz", "h11", "jinja2")
START, END = "<!-- generate_rate:start -->", "<!-- generate_rate:end -->"


def measure(golds: list, attempts: int, workers: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="cligym-bench-") as out:
        summary = Generator(golds, Path(out), HeuristicInverter(), seed=seed).run(
            10**9, workers=workers, budget=Budget(attempts=attempts)
        )
    return summary.as_dict()


def report(rows: list[tuple[int, dict]], golds: list[str], attempts: int, command: str) -> str:
    lines = [
        f"### Inversion throughput (heuristic inverter, {attempts} attempts per row, golds: {', '.join(golds)})",
        "",
        "| workers | attempts | accepted | wall s | validated tasks / hour | vs 1 worker |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    base = rows[0][1]["tasks_per_hour"] or 1
    for workers, r in rows:
        lines.append(f"| {workers} | {r['attempts']} | {r['accepted']} | {r['seconds']} | {r['tasks_per_hour']} | "
                     f"{r['tasks_per_hour'] / base:.2f}x |")  # fmt: skip
    reasons = Counter()
    for _, r in rows:
        reasons.update(r["rejected"])
    total = sum(r["attempts"] for _, r in rows)
    lines += ["", "| rejection reason | share of attempts |", "| --- | ---: |"]
    lines += [f"| {k} | {v / total:.0%} |" for k, v in reasons.most_common()]
    lines += ["", f"Made by `{command}` on {datetime.date.today().isoformat()}; Python {platform.python_version()}, "
              f"{os.cpu_count()} CPUs. Golds built and probed before timing."]  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gold", action="append", help="gold to use (repeat); default: six fast golds")
    parser.add_argument("--attempts", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    golds = [load_gold(g) for g in (args.gold or DEFAULT_GOLDS)]
    for gold in golds:  # warm-up: images built, golds verified, probes cached
        GoldWorkspace(gold).close()
    rows = [(w, measure(golds, args.attempts, w, args.seed)) for w in (1, 2)]
    section = report(
        rows,
        [g.name for g in golds],
        args.attempts,
        shlex.join(["python", "bench/generate_rate.py", *sys.argv[1:]]),
    )
    print(section)
    if args.write:
        write_section(section, start=START, end=END)


if __name__ == "__main__":
    main()
