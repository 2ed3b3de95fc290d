"""`cligym gold new NAME==VERSION`: a gold from a PyPI release, as a person would write it by hand.

The sdist is fetched on the host and read: its one-line summary, where its tests are (`tests/`, `test/`,
`<package>/tests`, or top-level `test_*.py`), and the test dependencies it declares (an extra named test,
tests, testing or dev, and `requirements*test*.txt` files), each pinned to its newest binary wheel. Then
`gold.yaml` and a `Dockerfile` are written, the image is built offline and the suite verified. What cannot be
found (no tests, or none passing) ends in an error that says what to edit and the command to run next.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path

from cligym_env.errors import CligymError
from cligym_env.gold import NAME_PATTERN

TEST_EXTRAS = ("test", "tests", "testing", "dev")
TEST_DIRS = ("tests", "test", "testing", "t")
DOCKERFILE = """\
# Gold environment: {requirement}, installed from the wheelhouse the host prepared (no network in the build).
ARG CLIGYM_BASE=cligym/base:latest
FROM ${{CLIGYM_BASE}}
COPY wheelhouse/ /opt/wheelhouse/
RUN python3 -m venv /opt/venv && pip install {installs}
COPY src/ /testbed/
WORKDIR /testbed
"""
# Test dependencies that are plugins for coverage, linting or parallel runs: not needed to run the tests.
NOT_NEEDED = {"pytest-cov", "coverage", "pytest-xdist", "flake8", "mypy", "ruff", "black", "pre-commit", "tox",
              "pytest-benchmark", "codecov", "isort", "pylint", "sphinx", "nox"}  # fmt: skip


def scaffold_pypi(requirement: str, root: Path, say: Callable[[str], None]) -> Path:
    """Write `root/<name>/gold.yaml` and its Dockerfile for `name==version` from PyPI; returns the folder."""
    from cligym_env.runtime.cache import cache_dir
    from cligym_env.runtime.pypi import fetch_sdist, unpack_sdist

    name, _, version = requirement.partition("==")
    if not name or not version:
        raise CligymError(f"'{requirement}': give a pinned release, e.g. tabulate==0.10.0")
    gold_name = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not re.match(NAME_PATTERN, gold_name):
        raise CligymError(f"'{name}' does not make a gold name ({NAME_PATTERN})")
    folder = root / gold_name
    if (folder / "gold.yaml").exists():
        raise CligymError(
            f"{folder / 'gold.yaml'} exists already: edit it, then `cligym gold verify {gold_name}`"
        )
    say(f"{gold_name}: fetching the sdist of {requirement}")
    sdist = fetch_sdist(requirement, cache_dir("downloads", "sdists"))
    with tempfile.TemporaryDirectory(prefix="cligym-new-gold-") as tmp:
        src = Path(tmp) / "src"
        unpack_sdist(sdist, src)
        summary = _summary(src) or f"{name} {version}"
        tests = find_tests(src, name)
        if tests is None:
            raise CligymError(
                f"{requirement}: its sdist ships no tests (no tests/, test/ or test_*.py); a gold needs a suite. "
                "Pick a release whose sdist has them, or write gold.yaml by hand (see tasks/gold/README.md)"
            )
        wanted = declared_test_dependencies(src)
    say(f"{gold_name}: tests in {tests or '.'}; test dependencies: {', '.join(wanted) or 'none'}")
    wheels = [_pin("pytest")] + [_pin(r) for r in wanted if r.lower() != "pytest"]
    folder.mkdir(parents=True, exist_ok=True)
    installs = " ".join([name, *(w.split("==")[0] for w in wheels)])
    (folder / "Dockerfile").write_text(DOCKERFILE.format(requirement=requirement, installs=installs))
    target = f" {tests}" if tests else ""
    lines = [
        f"name: {gold_name}", f"description: {_yaml_text(summary)}", "language: python", f'version: "{version}"',
        "source:", f"  pypi: {name}=={version}", "wheels:", *[f"- {w}" for w in wheels], "workdir: /testbed",
        f"test_command: python -m pytest -p no:cacheprovider -q --junitxml=/tmp/cligym-results.xml{target}",
        "results:", "  format: junit", "  path: /tmp/cligym-results.xml", "test_timeout: 600", "network: false",
        "tags: []",
    ]  # fmt: skip
    (folder / "gold.yaml").write_text("\n".join(lines) + "\n")
    return folder


def find_tests(src: Path, name: str) -> str | None:
    """Where the suite is, relative to the source tree ("" for top-level test files), or None."""
    for folder in TEST_DIRS:
        if (src / folder).is_dir() and any((src / folder).rglob("test*.py")):
            return folder
    package = name.replace("-", "_").lower()
    for base in (src, src / "src"):
        candidate = base / package / "tests"
        if candidate.is_dir() and any(candidate.rglob("test*.py")):
            return str(candidate.relative_to(src))
    if any(src.glob("test_*.py")) or any(src.glob("*_test.py")):
        return ""
    return None


def declared_test_dependencies(src: Path) -> list[str]:
    """Names of the test dependencies the sdist declares (its test extras and requirements files)."""
    found: list[str] = []
    info = src / "PKG-INFO"
    if info.is_file():
        for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
            if not line.startswith("Requires-Dist:"):
                continue
            spec, _, marker = line.removeprefix("Requires-Dist:").partition(";")
            extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
            if extra and extra.group(1).lower() in TEST_EXTRAS:
                found.append(_requirement_name(spec))
    for path in sorted(src.glob("requirements*test*.txt")) + sorted(src.glob("requirements/test*.txt")):
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith(("-", ".")):
                found.append(_requirement_name(line))
    return [n for n in dict.fromkeys(found) if n and n.lower() not in NOT_NEEDED]


def _requirement_name(spec: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", spec)
    return match.group(1) if match else ""


def _pin(name: str) -> str:
    """`name==version` of the newest binary wheel pip finds for this machine's Python (the one pip downloads, or
    finds already downloaded)."""
    from cligym_env.runtime.cache import cache_dir
    from cligym_env.runtime.pypi import pip_output

    dest = cache_dir("downloads", "wheels")
    output = pip_output(["download", "--no-deps", "--only-binary", ":all:", name, "-d", str(dest)],
                        f"finding a wheel of {name} (add it to gold.yaml's wheels by hand if it has none)")  # fmt: skip
    wheel = re.findall(r"([^\s/]+\.whl)", output)
    if not wheel:
        raise CligymError(f"pip named no wheel of {name}: add it to gold.yaml's wheels by hand")
    return f"{name}=={wheel[-1].split('-')[1]}"


def _summary(src: Path) -> str | None:
    info = src / "PKG-INFO"
    if info.is_file():
        for line in info.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Summary:"):
                return line.removeprefix("Summary:").strip() or None
    return None


def _yaml_text(text: str) -> str:
    import json

    return json.dumps(text[:300])  # a JSON string is a valid YAML scalar
