"""What the reward-integrity layers cost: scoring an episode with the harness against running the tests alone.

For each repetition, two fresh containers of the task image get the task's `solution.sh`; then, in alternating
order, one is scored by `harness.score_container` (restart, change list, project-tree restore, code and login
checks, the trusted test run) and the other only runs the test command with the trusted runner. Reports p50
seconds of each and their ratio; both are measured in the same run.

    python bench/scoring_overhead.py --task tasks/generated/python-slugify-missing-dependency --n 8 --write
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

from step_latency import write_section  # noqa: E402

from cligym_env.runtime.containers import docker_client, exec_once, remove_container, start_container  # noqa: E402
from cligym_env.task import load_task  # noqa: E402
from cligym_env.task_image import build_task_image, run_task_tests, score_task_container  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- scoring_overhead:start -->", "<!-- scoring_overhead:end -->"


def one(task, image: str, harness: bool) -> float:
    """Seconds to score one repaired container (the repair itself is not timed)."""
    since = time.time()
    container = start_container(image, network=task.spec.network, workdir=task.spec.workdir)
    try:
        exec_once(container, task.solution_script(), timeout=600, workdir=task.spec.workdir)
        clock = time.monotonic()
        if harness:
            verdict = score_task_container(task, container, since=since, image=image)
            ok = verdict.report.score(task.spec.fail_to_pass, task.spec.pass_to_pass).resolved
        else:
            ok = (
                run_task_tests(task, container).score(task.spec.fail_to_pass, task.spec.pass_to_pass).resolved
            )
        seconds = time.monotonic() - clock
    finally:
        remove_container(container)
    if not ok:
        raise SystemExit(
            f"{task.id}: the oracle did not resolve the task ({'harness' if harness else 'plain'})"
        )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", type=Path, action="append")
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    tasks = [
        load_task(p) for p in (args.task or [ROOT / "tasks/generated/python-slugify-missing-dependency"])
    ]
    rows = []
    for task in tasks:
        image = build_task_image(task)
        one(task, image, True)  # warm the caches of healthy facts (once per image, not per episode)
        plain, scored = [], []
        for i in range(args.n):
            for harness in (True, False) if i % 2 else (False, True):
                (scored if harness else plain).append(one(task, image, harness))
        p_plain, p_scored = statistics.median(plain), statistics.median(scored)
        rows.append(f"| {task.id} | {p_plain:.2f} | {p_scored:.2f} | {p_scored - p_plain:+.2f} | "
                    f"{p_scored / p_plain:.2f}x |")  # fmt: skip
    version = docker_client().version().get("Version", "?")
    section = "\n".join([
        f"### Scoring overhead of the reward-integrity layers (oracle-repaired containers, N={args.n} each)",
        "",
        "| task | tests only, p50 s | harness + tests, p50 s | difference | ratio |",
        "| --- | ---: | ---: | ---: | ---: |",
        *rows,
        "",
        f"Made by `python bench/scoring_overhead.py {shlex.join(sys.argv[1:])}` on {datetime.date.today()}; Docker "
        f"{version}, Python {platform.python_version()}, {platform.machine()}. The harness adds a container restart, "
        "the change list, the project-tree check, code-file hashes and the login-environment check.",
    ])  # fmt: skip
    print(section)
    if args.write:
        write_section(section, start=START, end=END)


if __name__ == "__main__":
    main()
