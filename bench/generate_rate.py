"""Validated tasks per hour from `cligym generate`, with 1 and 2 workers, and why candidates were rejected.

Both rows run the same attempts (same golds, same seed, same number of attempts) into fresh folders, after one
warm-up pass that builds and probes the golds, so only inversion work is timed.

    python bench/generate_rate.py                       # print the table
    python bench/generate_rate.py --write               # ...and update BENCHMARKS.md (generate_rate section)
    python bench/generate_rate.py --journal tasks/generated/.generate/journal.jsonl --since 2026-11-26T07:00 --write
                                                        # the same figures for a production run, from its journal
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
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
JOURNAL_START, JOURNAL_END = "<!-- generate_run:start -->", "<!-- generate_run:end -->"


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


def journal_report(path: Path, since: str | None, command: str) -> str:
    """Throughput and rejections of a production run, read from its journal (attempts ended since `since`)."""
    entries = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    entries = [e for e in entries if "at" in e and (since is None or e["at"] >= since)]
    if not entries:
        return f"No attempts in {path} since {since}."
    ended = [datetime.datetime.fromisoformat(e["at"]) for e in entries]
    first = min(ended) - datetime.timedelta(seconds=entries[ended.index(min(ended))]["seconds"])
    hours = (max(ended) - first).total_seconds() / 3600
    accepted = [e for e in entries if e["status"] == "accepted"]
    composites = sum("+" in e.get("family", "") for e in accepted)
    tasks_root = path.parent.parent  # OUT/.generate/journal.jsonl
    kept = sum((tasks_root / e.get("task_id", "-") / "task.yaml").is_file() for e in accepted)
    reasons = Counter(e["reason"] for e in entries if e["status"] != "accepted")
    lines = [
        f"### Production run: `cligym generate` on every gold ({first:%Y-%m-%d %H:%M} to {max(ended):%H:%M} UTC)",
        "",
        "| attempts | accepted | of which composites | still in the set | golds with tasks | wall h | "
        "validated tasks / hour |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {len(entries)} | {len(accepted)} | {composites} | {kept} | {len({e['gold'] for e in accepted})} | "
        f"{hours:.2f} | {len(accepted) / hours:.1f} |",
        "",
        "| stage (accepted attempts) | median s | mean s |",
        "| --- | ---: | ---: |",
    ]
    for stage in ("live", "build", "rerun", "repair"):
        values = [e["timings"][stage] for e in accepted if stage in e.get("timings", {})]
        if values:
            lines.append(f"| {stage} | {statistics.median(values):.1f} | {statistics.mean(values):.1f} |")
    lines += ["", "| outcome | share of attempts |", "| --- | ---: |"]
    lines.append(f"| accepted | {len(accepted) / len(entries):.0%} |")
    lines += [f"| rejected: {k} | {v / len(entries):.0%} |" for k, v in reasons.most_common()]
    lines += ["", f"Made by `{command}` on {datetime.date.today().isoformat()} from the journal of that run."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gold", action="append", help="gold to use (repeat); default: six fast golds")
    parser.add_argument("--attempts", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts, one row each")
    parser.add_argument(
        "--journal", type=Path, help="summarise a `cligym generate` journal instead of running"
    )
    parser.add_argument("--since", help="with --journal: only attempts that ended at or after this ISO time")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    command = shlex.join(["python", "bench/generate_rate.py", *sys.argv[1:]])
    if args.journal:
        section = journal_report(args.journal, args.since, command)
        print(section)
        if args.write:
            write_section(section, start=JOURNAL_START, end=JOURNAL_END)
        return
    golds = [load_gold(g) for g in (args.gold or DEFAULT_GOLDS)]
    for gold in golds:  # warm-up: images built, golds verified, probes cached
        GoldWorkspace(gold).close()
    rows = [(int(w), measure(golds, args.attempts, int(w), args.seed)) for w in args.workers.split(",")]
    section = report(rows, [g.name for g in golds], args.attempts, command)
    print(section)
    if args.write:
        write_section(section, start=START, end=END)


if __name__ == "__main__":
    main()
