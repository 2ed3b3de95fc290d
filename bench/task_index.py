"""Loading a task set: the index (`cligym_env/index.py`) against reading every task.yaml, side by side.

On a copy of the set (`--tasks`, default tasks/generated) and on a synthetic set of `--scale` copies of it (ids
renamed), measures in fresh processes:
- `cligym tasks stats DIR`: before the index, every task.yaml was parsed (the baseline, `--baseline`
  below: the same command with the index bypassed); with the index, a warm index and stamps, and a cold
  checkout (index committed, no local stamps: every folder's digest is checked once);
- choosing tasks as `cligym run --split test --limit 1` does before its first episode (`select_tasks`).
Issue #16's targets: stats over ~2,000 tasks ≤ 3 s, the first episode's selection ≤ 3 s, both ≤ 10 s at 20,000.

    python bench/task_index.py --scale 10 --write
"""

from __future__ import annotations

import argparse
import datetime
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from step_latency import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- bench:task_index:start -->", "<!-- bench:task_index:end -->"

BASELINE = """
import sys, time
from pathlib import Path
from cligym_env.inversion.stats import task_stats
from cligym_env.task import load_task
root = Path(sys.argv[1])
tasks = [load_task(p) for p in sorted(root.iterdir()) if (p / "task.yaml").is_file()]
task_stats(tasks)
"""
INDEXED = """
import sys
from pathlib import Path
from cligym_env.inversion.stats import task_stats
from cligym_env.task import list_tasks
task_stats(list_tasks(Path(sys.argv[1])))
"""
SELECT = """
import sys
from cligym_env.rollout import select_tasks
chosen = select_tasks([sys.argv[1]], split="test", limit=1)
chosen[0].spec  # the one task played is read in full
"""


def timed(script: str, root: Path) -> float:
    """Seconds for a fresh Python process to run `script` on `root` (imports included, as a command pays)."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-c", script, str(root)], check=True, cwd=ROOT)
    return time.monotonic() - started


def copy_set(source: Path, dest: Path, copies: int) -> int:
    """`copies` copies of the task folders under `source` into `dest` (ids suffixed from the second copy on)."""
    n = 0
    for folder in sorted(p for p in source.iterdir() if (p / "task.yaml").is_file()):
        for k in range(copies):
            name = folder.name if k == 0 else f"{folder.name}-c{k}"
            target = dest / name
            shutil.copytree(folder, target)
            if k:
                spec = target / "task.yaml"
                spec.write_text(spec.read_text().replace(f"id: {folder.name}\n", f"id: {name}\n", 1))
            n += 1
    return n


def measure(root: Path) -> dict:
    for name in ("index.jsonl", ".index-stamps.json"):
        (root / name).unlink(missing_ok=True)
    row = {"baseline": timed(BASELINE, root)}
    row["first index build"] = timed(INDEXED, root)
    row["stats, index warm"] = timed(INDEXED, root)
    (root / ".index-stamps.json").unlink()
    row["stats, fresh checkout"] = timed(INDEXED, root)
    row["select --split test --limit 1"] = timed(SELECT, root)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=Path, default=ROOT / "tasks" / "generated")
    parser.add_argument("--scale", type=int, default=10, help="copies in the synthetic set (default 10)")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="cligym-bench-index-") as tmp:
        for copies in (1, args.scale):
            dest = Path(tmp) / f"x{copies}"
            dest.mkdir()
            n = copy_set(args.tasks, dest, copies)
            rows[n] = measure(dest)
            shutil.rmtree(dest)
    command = shlex.join(["python", "bench/task_index.py", *sys.argv[1:]])
    labels = list(next(iter(rows.values())))
    lines = [
        "## Loading a task set: the index against reading every task.yaml",
        "",
        f"`{command}` on {platform.machine()}, {datetime.date.today()}, fresh Python processes (imports "
        "included). Baseline: every task.yaml parsed (libyaml), as before the index. The ratio is the baseline's "
        "time over the row's.",
        "",
        "| | " + " | ".join(f"{n:,} tasks" for n in rows) + " |",
        "| --- | " + " | ".join("---:" for _ in rows) + " |",
    ]
    for label in labels:
        cells = []
        for row in rows.values():
            ratio = row["baseline"] / row[label]
            cells.append(f"{row[label]:.2f} s" + ("" if label == "baseline" else f" ({ratio:.1f}x)"))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    section = "\n".join(lines)
    print(section)
    if args.write:
        write_section(section, start=START, end=END)


if __name__ == "__main__":
    main()
