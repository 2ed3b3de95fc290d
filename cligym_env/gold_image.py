"""Build a gold environment's image offline, and verify that its tests pass in a fresh container."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from cligym_env.errors import CligymError
from cligym_env.gold import RECORD_FILE, Gold, GoldRecord
from cligym_env.runtime.base import ensure_base_image
from cligym_env.runtime.cache import cache_dir
from cligym_env.runtime.containers import docker_client, remove_container, require_image, start_container
from cligym_env.runtime.images import IMAGE_LABEL, build_image, content_hash, image_exists, image_size_mb
from cligym_env.runtime.pypi import build_wheel, download_wheels, fetch_sdist, unpack_sdist
from cligym_env.testing import TestReport, run_tests

CONTEXT_RECIPE = "gold-context-1"  # bump when the context layout changes, so every gold image is rebuilt
Progress = Callable[[str], None]


def _gold_inputs(gold: Gold) -> list[Path]:
    return [p for p in sorted(gold.path.iterdir()) if p.name != RECORD_FILE and not p.name.startswith(".")]


def gold_image_name(gold: Gold, base_image: str) -> str:
    """`cligym/gold-<name>:<hash>`: the hash covers the gold's files, the base image and the context recipe."""
    return f"{gold.image_repo}:{content_hash(_gold_inputs(gold), base_image, CONTEXT_RECIPE)}"


def assemble_context(gold: Gold, dest: Path, progress: Progress | None = None) -> Path:
    """Lay out a self-contained build context in `dest`: the gold's files, `src/` and `wheelhouse/`.

    Downloads happen here, on the host; the image build itself runs with networking off.
    """
    say = progress or (lambda _msg: None)
    if (dest / ".complete").exists():
        return dest
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for item in _gold_inputs(gold):
        (shutil.copytree if item.is_dir() else shutil.copy2)(item, tmp / item.name)
    spec = gold.spec
    downloads = cache_dir("downloads", "sdists")
    built = cache_dir("downloads", "wheels")
    say(f"{spec.name}: fetching sdist {spec.source.pypi}")
    sdist = fetch_sdist(spec.source.pypi, downloads)
    unpack_sdist(sdist, tmp / "src")
    say(f"{spec.name}: building wheel from {sdist.name}")
    wheel = build_wheel(sdist, built)
    wheelhouse = tmp / "wheelhouse"
    wheelhouse.mkdir()
    say(f"{spec.name}: downloading dependency wheels")
    download_wheels([str(wheel), *spec.wheels], wheelhouse)
    if not (wheelhouse / wheel.name).exists():
        shutil.copy2(wheel, wheelhouse / wheel.name)
    (tmp / ".complete").write_text("ok\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def build_gold(gold: Gold, *, force: bool = False, progress: Progress | None = None) -> tuple[str, float]:
    """Build (or reuse) the gold's image; returns (image name, seconds spent building; 0.0 if reused).

    Also tags the image `cligym/gold-<name>:latest`, which task Dockerfiles start from.
    """
    base = ensure_base_image(progress=progress)
    image = gold_image_name(gold, base)
    if image_exists(image) and not force:
        if not image_exists(gold.latest_image) or _image_id(image) != _image_id(gold.latest_image):
            _tag(image, gold.latest_image)
        return image, 0.0
    started = time.monotonic()
    context = assemble_context(gold, cache_dir("contexts") / image.split("/")[1].replace(":", "-"), progress)
    build_image(
        context,
        image,
        buildargs={"CLIGYM_BASE": base},
        labels={IMAGE_LABEL: "gold", "cligym.gold": gold.name},
        extra_tags=[gold.latest_image],
        progress=progress,
        what=f"gold '{gold.name}'",
    )
    return image, round(time.monotonic() - started, 1)


def _image_id(name: str) -> str:
    return docker_client().images.get(name).id


def _tag(source: str, target: str) -> None:
    repo, _, tag = target.rpartition(":")
    docker_client().images.get(source).tag(repo, tag)


def run_gold_tests(gold: Gold, image: str) -> TestReport:
    """Run the gold's test command once in a fresh container of `image`."""
    require_image(image)
    container = start_container(image, network=gold.spec.network, workdir=gold.spec.workdir)
    try:
        return run_tests(
            container,
            gold.spec.test_command,
            results_path=gold.spec.results.path,
            results_format=gold.spec.results.format,
            workdir=gold.spec.workdir,
            timeout=gold.spec.test_timeout,
        )
    finally:
        remove_container(container)


def verify_gold(
    gold: Gold, *, runs: int = 1, force_build: bool = False, progress: Progress | None = None
) -> GoldRecord:
    """Build the gold, run its tests `runs` times in fresh containers, save and return the record.

    Tests whose outcome differs between runs are flaky: listed, and left out of `passing`.
    Raises CligymError if no test passes at all (the gold is not healthy).
    """
    image, build_seconds = build_gold(gold, force=force_build, progress=progress)
    reports = []
    for i in range(runs):
        if progress:
            progress(f"{gold.name}: running tests ({i + 1}/{runs})")
        reports.append(run_gold_tests(gold, image))
    first = reports[0]
    flaky = sorted(
        {
            t
            for r in reports[1:]
            for t in set(r.outcomes) | set(first.outcomes)
            if r.status_of(t) != first.status_of(t)
        }
    )
    passing = sorted(first.passed - set(flaky))
    if not passing:
        raise CligymError(
            f"gold '{gold.name}': no test passed in {image} ({first.summary()}).\n"
            f"Last output:\n{first.output_tail[-1500:]}"
        )
    record = GoldRecord(
        gold=gold.name,
        image=image,
        passing=passing,
        failing=sorted(first.not_passed - set(flaky)),
        flaky=flaky,
        n_tests=len(first.outcomes),
        build_seconds=build_seconds or None,
        test_seconds=round(max(r.seconds for r in reports), 1),
        image_size_mb=image_size_mb(image),
    )
    gold.save_record(record)
    return record
