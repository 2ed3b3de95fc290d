"""Seconds to make a task's broken image: `docker build` vs running the RUN and loading its diff as the layer.

Both ways run on the same task Dockerfiles from a task set (one-RUN tasks whose gold image is built), one after
the other per task in alternating order, each image removed after it is timed; the ratio is per task.

    python bench/layer_commit.py                 # 16 tasks from tasks/generated
    python bench/layer_commit.py --n 30 --write  # ...and update BENCHMARKS.md (layer_commit section)
"""

from __future__ import annotations

import argparse
import functools
import platform
import random
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from step_latency import write_section  # noqa: E402

from cligym_env.runtime.containers import docker_client  # noqa: E402
from cligym_env.runtime.images import build_image, image_exists  # noqa: E402
from cligym_env.runtime.layers import run_as_layer  # noqa: E402
from cligym_env.task import list_tasks, single_run_command  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- layer_commit:start -->", "<!-- layer_commit:end -->"


def _docker_build(gold_image: str, dockerfile: str, tag: str) -> None:
    with tempfile.TemporaryDirectory(prefix="cligym-bench-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(dockerfile)
        build_image(Path(tmp), tag, buildargs={"CLIGYM_GOLD_IMAGE": gold_image})


def _timed(make) -> float:
    clock = time.monotonic()
    make()
    return time.monotonic() - clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=Path, default=ROOT / "tasks" / "generated")
    parser.add_argument("--n", type=int, default=16, help="tasks to time (default 16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    args = parser.parse_args()
    client = docker_client()
    candidates = []
    for task in list_tasks(args.tasks):
        dockerfile = task.dockerfile.read_text()
        command = single_run_command(dockerfile)
        image = f"cligym/gold-{task.spec.gold}:latest"  # as built on this machine
        if command and image_exists(image):
            candidates.append((task.id, image, dockerfile, command))
    picked = random.Random(args.seed).sample(candidates, min(args.n, len(candidates)))
    rows = []
    for i, (task_id, gold_image, dockerfile, command) in enumerate(picked):
        ways = {
            "docker build": functools.partial(
                _docker_build, gold_image, dockerfile, "cligym/bench-layer:build"
            ),
            "diff + load": functools.partial(run_as_layer, gold_image, command, "cligym/bench-layer:diff"),
        }
        order = list(ways) if i % 2 == 0 else list(reversed(ways))
        seconds = {}
        for way in order:
            seconds[way] = _timed(ways[way])
        for tag in ("cligym/bench-layer:build", "cligym/bench-layer:diff"):
            if image_exists(tag):
                client.images.remove(tag, force=True)
        rows.append(seconds)
        print(
            f"{task_id}: docker build {seconds['docker build']:.2f} s, diff + load {seconds['diff + load']:.2f} s"
        )
    build = [r["docker build"] for r in rows]
    diff = [r["diff + load"] for r in rows]
    ratios = [b / d for b, d in zip(build, diff, strict=True)]
    info = client.info()
    section = "\n".join([
        f"### Broken-image build: `docker build` vs diff + `docker load` ({len(rows)} task Dockerfiles)",
        "",
        "| way | median s | mean s | max s |",
        "| --- | ---: | ---: | ---: |",
        f"| docker build (baseline) | {statistics.median(build):.2f} | {statistics.mean(build):.2f} | {max(build):.2f} |",
        f"| diff + load | {statistics.median(diff):.2f} | {statistics.mean(diff):.2f} | {max(diff):.2f} |",
        "",
        f"Per-task speed-up (docker build / diff + load): median {statistics.median(ratios):.2f}x, "
        f"min {min(ratios):.2f}x. Storage driver {info.get('Driver')}, Docker {info.get('ServerVersion')}, "
        f"{info.get('NCPU')} CPUs, Python {platform.python_version()}.",
        "",
        f"Command: `python bench/layer_commit.py {shlex.join(sys.argv[1:])}`",
    ])  # fmt: skip
    print(section)
    if args.write:
        write_section(section, start=START, end=END)


if __name__ == "__main__":
    main()
