"""Build a gold environment's image offline, and verify that its tests pass in a fresh container."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from cligym_env.errors import CligymError
from cligym_env.gold import RECORD_FILE, Gold, GoldRecord, GoldSpec
from cligym_env.golds.crates import add_crate_source
from cligym_env.golds.debian import add_debian_source
from cligym_env.golds.layers import deb_layer, runtime_image
from cligym_env.golds.probe import probe_runtime
from cligym_env.golds.pypi import add_pypi_source
from cligym_env.runtime.base import ensure_base_image
from cligym_env.runtime.cache import cache_dir
from cligym_env.runtime.containers import docker_client, remove_container, require_image, start_container
from cligym_env.runtime.images import IMAGE_LABEL, build_image, content_hash, image_exists, image_size_mb
from cligym_env.testing import TestReport, run_tests

CONTEXT_RECIPE = "gold-context-1"  # bump when the context layout changes, so every gold image is rebuilt
Progress = Callable[[str], None]
# How each source kind fills a build context: (spec, context folder, progress) -> None.
SOURCE_KINDS: dict[str, Callable[[GoldSpec, Path, Progress], None]] = {
    "pypi": add_pypi_source,
    "crate": add_crate_source,
    "debian": add_debian_source,
}


def _gold_inputs(gold: Gold) -> list[Path]:
    return [p for p in sorted(gold.path.iterdir()) if p.name != RECORD_FILE and not p.name.startswith(".")]


def gold_image_name(gold: Gold, base_image: str) -> str:
    """`cligym/gold-<name>:<hash>`: the hash covers the gold's files, its parent image (the base, or a layer
    on it) and the context recipe."""
    return f"{gold.image_repo}:{content_hash(_gold_inputs(gold), base_image, CONTEXT_RECIPE)}"


def parent_chain(gold: Gold, base: str, progress: Progress | None = None) -> list[str]:
    """The images under the gold, bottom up: the base, its language runtime layer if it has one, and a
    layer of the gold's own `debs` if it lists any; layers are built first when missing."""
    chain = [base]
    if gold.spec.runtime:
        chain.append(runtime_image(gold.spec.runtime, base, progress))
    if gold.spec.debs:
        repo = f"cligym/debs-{gold.name}"
        chain.append(deb_layer(chain[-1], gold.spec.debs, repo, kind="debs", progress=progress))
    return chain


def parent_image(gold: Gold, base: str, progress: Progress | None = None) -> str:
    """The image the gold's Dockerfile starts from (`${CLIGYM_BASE}`): the top of `parent_chain`."""
    return parent_chain(gold, base, progress)[-1]


def assemble_context(gold: Gold, dest: Path, progress: Progress | None = None) -> Path:
    """Lay out a self-contained build context in `dest`: the gold's files plus what its source kind fetches
    (`src/` always; `wheelhouse/` for PyPI, `vendor/` for crates).

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
    SOURCE_KINDS[gold.spec.source.kind](gold.spec, tmp, say)
    (tmp / ".complete").write_text("ok\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def build_gold(gold: Gold, *, force: bool = False, progress: Progress | None = None) -> tuple[str, float]:
    """Build (or reuse) the gold's image; returns (image name, seconds spent building; 0.0 if reused).

    Also tags the image `cligym/gold-<name>:latest`, which task Dockerfiles start from.
    """
    base = parent_image(gold, ensure_base_image(progress=progress), progress)
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
    gold: Gold,
    *,
    runs: int = 1,
    force_build: bool = False,
    probe: bool = True,
    progress: Progress | None = None,
) -> GoldRecord:
    """Build the gold, run its tests `runs` times in fresh containers, probe what they use at run time
    (see `cligym_env.golds.probe`; skipped when not `probe`), save and return the record.

    Tests whose outcome differs between runs are flaky: listed, and left out of `passing`.
    Raises CligymError if no test passes at all (the gold is not healthy).
    """
    image, build_seconds = build_gold(gold, force=force_build, progress=progress)
    previous = _previous_record(gold)
    if not build_seconds and previous and previous.image == image:  # cached image: keep what its build took
        build_seconds = previous.build_seconds or 0.0
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
    if probe:
        if progress:
            progress(f"{gold.name}: probing what the tests use at run time (strace)")
        record.runtime = probe_runtime(gold, image)
    gold.save_record(record)
    return record


def _previous_record(gold: Gold) -> GoldRecord | None:
    try:
        return gold.record()
    except CligymError:  # an unreadable old record is simply replaced
        return None
