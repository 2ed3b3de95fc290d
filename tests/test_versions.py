"""Version-skew faults: which real releases are offered, how the wheel reaches the image, and one task end to end."""

from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path

import pytest

from cligym_env.errors import CligymError
from cligym_env.gold import load_gold
from cligym_env.inversion import wheels
from cligym_env.inversion.families.base import Context
from cligym_env.inversion.families.versions import FAMILIES, skewable_dists
from cligym_env.inversion.feedback import fault_from_dict, fault_to_dict
from cligym_env.inversion.pipeline import GoldWorkspace, Proposal, Rejection, run_attempt
from cligym_env.inversion.probe import Probe
from cligym_env.inversion.statement import leaks
from cligym_env.inversion.validate import validate_task
from cligym_env.task import Provenance, dockerfile_text, load_task

DOWNGRADE, UPGRADE = FAMILIES
SHA = "0" * 64


def _file(filename: str, *, size: int = 20_000, requires: str | None = ">=3.8", yanked: bool = False) -> dict:
    kind = "bdist_wheel" if filename.endswith(".whl") else "sdist"
    return {"filename": filename, "packagetype": kind, "size": size, "requires_python": requires,
            "yanked": yanked, "digests": {"sha256": SHA}, "url": f"../../packages/{filename}"}  # fmt: skip


# A made-up project's PyPI JSON: one file per case the choice must handle.
PROJECT = {
    "releases": {
        "0.9.0": [_file("demo-0.9.0-py2.py3-none-any.whl", requires=None)],
        "1.0.0": [_file("demo-1.0.0-py3-none-any.whl")],
        "1.1.0": [_file("demo-1.1.0-py3-none-any.whl")],
        "1.1.1": [_file("demo-1.1.1-py3-none-any.whl", yanked=True)],  # yanked: 1.1.0 is that series' last
        "1.2.0": [
            _file("demo-1.2.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"),
            _file("demo-1.2.0-py3-none-any.whl"),
        ],  # the pure wheel wins  # fmt: skip
        "1.2.1": [_file("demo-1.2.1.tar.gz")],  # no wheel
        "1.3.0": [_file("demo-1.3.0-py3-none-any.whl")],  # installed
        "1.4.0rc1": [_file("demo-1.4.0rc1-py3-none-any.whl")],  # pre-release
        "1.4.0": [_file("demo-1.4.0-cp312-cp312-manylinux_2_17_x86_64.whl")],  # another Python only
        "1.5.0": [_file("demo-1.5.0-py3-none-any.whl", size=3 << 20)],  # too big
        "1.6.0": [_file("demo-1.6.0-cp38-abi3-manylinux_2_28_x86_64.whl")],
        "1.6.2": [_file("demo-1.6.2-py3-none-any.whl", requires=">=3.12")],  # needs a newer Python
        "2.0.0": [_file("demo-2.0.0-py3-none-any.whl")],
        "2.1.0": [_file("demo-2.1.0-cp311-cp311-musllinux_1_1_x86_64.whl")],  # another libc
    }
}


def test_installable_releases_skip_what_the_image_cannot_install() -> None:
    found = wheels.installable_releases("demo", PROJECT, "3.11", base="https://pypi.org/pypi/demo/json")
    assert [r.version for r in found] == ["0.9.0", "1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.6.0", "2.0.0"]
    by_version = {r.version: r for r in found}
    assert by_version["1.2.0"].filename == "demo-1.2.0-py3-none-any.whl"
    assert (
        by_version["1.0.0"].url == "https://pypi.org/packages/demo-1.0.0-py3-none-any.whl"
    )  # relative: resolved


def test_downgrades_and_upgrades_are_the_neighbouring_series_last_releases() -> None:
    found = wheels.installable_releases("demo", PROJECT, "3.11")
    assert [r.version for r in wheels.downgrades("1.3.0", found)] == ["1.2.0", "0.9.0"]
    assert [r.version for r in wheels.upgrades("1.3.0", found)] == ["1.6.0", "2.0.0"]
    assert [r.version for r in wheels.downgrades("1.0.0", found)] == ["0.9.0"]
    assert wheels.upgrades("2.0.0", found) == [] and wheels.downgrades("0.9.0", found) == []
    assert [r.version for r in wheels.downgrades("1.3.0.post1", found)] == ["1.2.0", "0.9.0"]
    assert wheels.downgrades("unknown", found) == []


def test_a_downgrade_is_what_a_two_year_old_lock_file_pins() -> None:
    dated = [wheels.Release("demo", v, f"demo-{v}-py3-none-any.whl", "-", SHA, 1, day)
             for v, day in (("2.0.0", "2021-05-01"), ("2.4.0", "2023-03-01"), ("2.9.1", "2025-06-30"),
                            ("3.0.0", "2025-01-01"), ("3.1.0", "2026-07-01"), ("3.2.0", "2026-08-01"))]  # fmt: skip
    assert [r.version for r in wheels.downgrades("3.2.0", dated)] == ["3.1.0", "2.4.0", "2.9.1"]
    assert [r.version for r in wheels.downgrades("3.2.0", dated, years=5)] == ["3.1.0", "2.0.0", "2.9.1"]


@pytest.mark.parametrize(
    ("filename", "fits"),
    [
        ("a-1-py3-none-any.whl", True),
        ("a-1-py2.py3-none-any.whl", True),
        ("a-1-py310-none-any.whl", True),
        ("a-1-py312-none-any.whl", False),
        ("a-1-py2-none-any.whl", False),
        ("a-1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", True),
        ("a-1-cp311-cp311-manylinux_2_39_x86_64.whl", False),  # newer glibc than bookworm's
        ("a-1-cp311-cp311-manylinux_2_17_aarch64.whl", False),
        ("a-1-cp310-cp310-manylinux_2_17_x86_64.whl", False),
        ("a-1-cp39-abi3-manylinux1_x86_64.whl", True),
        ("a-1-cp312-abi3-manylinux1_x86_64.whl", False),
        ("a-1-1build-py3-none-any.whl", True),
    ],
)
def test_wheel_tags_match_the_images_python(filename: str, fits: bool) -> None:
    assert wheels.wheel_fits(filename, "3.11") is fits


@pytest.mark.parametrize(
    ("spec", "fits"),
    [(None, True), ("", True), (">=3.8", True), (">=3.12", False), (">=3.7, <4", True), ("<3.11", False),
     ("!=3.11.*,>=3.6", False), ("==3.*", True), ("~=3.9", True), ("~=3.12", False), (">=2.7,!=3.0.*", True),
     ("banana", False)],
)  # fmt: skip
def test_requires_python(spec: str | None, fits: bool) -> None:
    assert wheels.python_fits(spec, "3.11.2") is fits


def test_a_release_whose_own_requirements_are_not_installed_is_not_offered(
    monkeypatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLIGYM_CACHE", str(tmp_path))
    release = wheels.Release(
        "demo", "1.2.0", "demo-1.2.0-py3-none-any.whl", "http://127.0.0.1:9/x.whl", SHA, 1
    )
    (tmp_path / "wheels" / "metadata").mkdir(parents=True)
    (tmp_path / "wheels" / "metadata" / f"{release.filename}.metadata").write_text(
        "Metadata-Version: 2.1\nName: demo\nVersion: 1.2.0\nRequires-Dist: attrs>=22.2\n"
        "Requires-Dist: sortedcontainers<3,>=2.1\nRequires-Dist: exceptiongroup>=1; python_version < '3.11'\n"
        "Requires-Dist: black; extra == 'cli'\nRequires-Dist: pywin32; sys_platform == 'win32'\n\n"
        "Requires-Dist: not-a-header (the description)\n"
    )  # fmt: skip
    installed = {"attrs": "25.4.0", "sortedcontainers": "2.4.0"}
    assert wheels.unmet_requirements(release, installed, "3.11.2") == []
    assert wheels.unmet_requirements(release, {"attrs": "21.0"}, "3.11.2") == [
        "attrs>=22.2", "sortedcontainers<3,>=2.1"
    ]  # fmt: skip
    assert "exceptiongroup>=1; python_version < '3.11'" in wheels.unmet_requirements(
        release, installed, "3.10.4"
    )


def _context() -> Context:
    """A gold `demo-app` that imports `demo` (which needs `helper`), tested with pytest and a pytest plugin."""
    probe = Probe(
        gold="demo-app", image="-", workdir="/testbed", project_dist="demo-app", python_version="3.11.2"
    )
    probe.dists = {
        "demo-app": {"version": "1.0", "requires": ["demo"], "top_level": ["demo_app"]},
        "demo": {"version": "1.3.0", "requires": ["helper"], "top_level": ["demo", "__pycache__"]},
        "helper": {"version": "1.0", "requires": [], "top_level": ["helper"]},
        "pytest-demo": {"version": "1.0", "requires": [], "top_level": ["pytest_demo"]},
        "pytest": {"version": "8.4.2", "requires": [], "top_level": ["pytest", "_pytest"]},
    }
    return Context(probe, lambda command: "demo\nos\npytest\n" if "grep" in command else "")


def test_only_what_the_project_imports_and_pytest_plugins_are_skewed() -> None:
    assert skewable_dists(_context()) == ["demo", "pytest-demo"]


def test_offline_host_gives_a_clear_error_and_no_targets(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CLIGYM_CACHE", str(tmp_path))
    monkeypatch.setattr(wheels, "PYPI_JSON", "http://127.0.0.1:9/pypi/{name}/json")
    with pytest.raises(CligymError, match="cannot list the releases of 'demo' on PyPI"):
        wheels.releases_of("demo", timeout=5)
    assert DOWNGRADE.targets(_context()) == [] and UPGRADE.targets(_context()) == []
    # A listing fetched earlier, though out of date, stands in while PyPI cannot be reached.
    listing = tmp_path / "wheels" / "index-v2" / "demo-py3.11.json"
    listing.write_text(
        json.dumps([dataclasses.asdict(r) for r in wheels.installable_releases("demo", PROJECT)])
    )
    os.utime(listing, (0, 0))
    assert [r.version for r in wheels.releases_of("demo", timeout=5)][-2:] == ["1.6.0", "2.0.0"]


def test_fault_installs_the_cached_wheel_and_repairs_from_the_wheelhouse(monkeypatch, tmp_path: Path) -> None:
    found = wheels.installable_releases("demo", PROJECT, "3.11")
    wheel = tmp_path / "demo-1.2.0-py3-none-any.whl"
    wheel.write_bytes(b"PK")
    monkeypatch.setattr(wheels, "releases_of", lambda name, python="3.11": found if name == "demo" else [])
    monkeypatch.setattr(wheels, "fetch_wheel", lambda release: wheel)
    monkeypatch.setattr(
        wheels, "requirements_of", lambda release: ["helper>=1"] if release.version != "0.9.0" else ["six"]
    )
    ctx = _context()
    assert DOWNGRADE.targets(ctx) == ["demo==1.2.0"]  # not the project, not pytest; 0.9.0 needs six
    assert UPGRADE.targets(ctx) == ["demo==1.6.0", "demo==2.0.0"]
    fault = DOWNGRADE.fault(ctx, "demo==1.2.0", random.Random(0))
    assert fault.signature == "dependency-version-downgrade:demo==1.2.0"
    assert fault.category == "dependencies-runtime"
    assert fault.files == ((str(wheel), wheel.name),)
    (command,) = fault.break_commands
    assert "pip install --no-deps --no-index --find-links /tmp/cligym-files demo==1.2.0" in command
    assert "/tmp/cligym-files" in command.split("&&", 1)[1]  # the break leaves no copy behind
    assert fault.repair_commands == ("pip install --no-deps demo==1.3.0",)
    assert {"demo", "1.2.0", "1.3.0", "==1.2.0"} <= set(fault.leak_terms)
    phrasings = (fault.symptom, *fault.hints)
    assert len(set(phrasings)) == 4 and not any(leaks(p, fault.leak_terms) for p in phrasings)
    # A fault back from the journal (JSON lists) still gives the proposal hashable (host, dest) pairs.
    again = fault_from_dict(json.loads(json.dumps(fault_to_dict(fault))))
    proposal = Proposal.from_faults([again, fault], "demo-app")
    assert proposal.files == ((str(wheel), wheel.name),)


def test_dockerfile_keeps_the_copy_line() -> None:
    text = dockerfile_text(["COPY files/ /tmp/cligym-files/", "pip install x", "rm -rf /tmp/cligym-files"])
    assert "\nCOPY files/ /tmp/cligym-files/\nRUN pip install x \\\n && rm -rf /tmp/cligym-files\n" in text


@pytest.mark.slow
def test_version_skew_task_end_to_end(tmp_path: Path) -> None:
    """natsort's tests need a newer pytest-mock than 2.0.0: a task whose wheel travels in `files/`. apispec
    under marshmallow 3.x only loses two parametrized test ids from a green run: refused, nobody would see it."""
    ws = GoldWorkspace(load_gold("apispec"))
    try:
        target = "marshmallow==3.26.2"
        assert target in DOWNGRADE.targets(ws.context)
        fault = DOWNGRADE.fault(ws.context, target, random.Random(0))
        with pytest.raises(Rejection) as refused:
            run_attempt(ws, Proposal.from_faults([fault], "apispec"), tmp_path, "apispec-skew",
                        Provenance(inverter="test"), random.Random(1))  # fmt: skip
        assert refused.value.reason == "no-visible-failure"
    finally:
        ws.close()
    ws = GoldWorkspace(load_gold("natsort"))
    try:
        target = "pytest-mock==2.0.0"
        assert target in DOWNGRADE.targets(ws.context)
        fault = DOWNGRADE.fault(ws.context, target, random.Random(0))
        proposal = Proposal.from_faults([fault], "natsort")
        task = run_attempt(
            ws, proposal, tmp_path, "natsort-skew", Provenance(inverter="test"), random.Random(1)
        )
    finally:
        ws.close()
    assert task.spec.signature == "dependency-version-downgrade:pytest-mock==2.0.0"
    assert task.spec.fail_to_pass
    assert (task.path / "files" / "pytest_mock-2.0.0-py2.py3-none-any.whl").is_file()
    assert "COPY files/ /tmp/cligym-files/" in task.dockerfile.read_text()
    assert not leaks(task.spec.instruction + (task.spec.hint or ""), fault.leak_terms)
    assert validate_task(load_task(task.path)).ok
