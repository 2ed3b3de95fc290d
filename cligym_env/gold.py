"""Gold environment specs: a real project whose own unit tests pass in a container.

A gold lives in `tasks/gold/<name>/` as `gold.yaml` (a `GoldSpec`), a `Dockerfile` that starts
`FROM ${CLIGYM_BASE}`, and, once verified, `verified.json` (a `GoldRecord`: the passing test ids).
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cligym_env.errors import SpecError
from cligym_env.specs import describe_validation_error, load_yaml_model, write_atomic

GOLD_FILE = "gold.yaml"
RECORD_FILE = "verified.json"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"


def repo_root() -> Path:
    """The checkout this package runs from (where `tasks/` lives), or the current directory if installed elsewhere."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "tasks").is_dir() else Path.cwd()


def gold_roots() -> list[Path]:
    """Where golds are looked up by name, in order: `$CLIGYM_GOLD_ROOT`, `tasks/gold` of the current folder (your
    project, with an installed cligym), then `tasks/gold` of cligym's checkout (the golds it ships)."""
    import os

    env = os.environ.get("CLIGYM_GOLD_ROOT")
    roots = [Path(env)] if env else []
    roots += [Path.cwd() / "tasks" / "gold", repo_root() / "tasks" / "gold"]
    out: list[Path] = []
    for root in roots:
        if root.resolve() not in {r.resolve() for r in out}:
            out.append(root)
    return out


def default_gold_root() -> Path:
    """Where `cligym gold list` looks and new golds go: the first of `gold_roots()` that exists (`$CLIGYM_GOLD_ROOT`
    even when it does not yet)."""
    import os

    if os.environ.get("CLIGYM_GOLD_ROOT"):
        return Path(os.environ["CLIGYM_GOLD_ROOT"])
    return next((r for r in gold_roots() if r.is_dir()), gold_roots()[-1])


class SourceSpec(BaseModel):
    """Where the project's code comes from; exactly one kind is set."""

    model_config = ConfigDict(extra="forbid")

    pypi: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9.!+_-]+$")
    """A pinned PyPI sdist, e.g. `click==8.5.1`: unpacked into `src/`, built into a wheel on the host."""
    crate: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*==[A-Za-z0-9.+-]+$")
    """A pinned crates.io crate, e.g. `semver==1.0.23`: unpacked into `src/`, dependencies vendored on the host."""
    debian: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.+-]+==[A-Za-z0-9.+~:-]+$")
    """A Debian source package, e.g. `libtry-tiny-perl==0.31-2`: its upstream tarball unpacked into `src/`."""

    @model_validator(mode="after")
    def _one_kind(self) -> SourceSpec:
        kinds = [k for k in ("pypi", "crate", "debian") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(
                "set exactly one source kind, e.g. `pypi: click==8.5.1`, `crate: semver==1.0.23` or "
                "`debian: libtry-tiny-perl==0.31-2`" + (f" (got {', '.join(kinds)})" if kinds else "")
            )
        return self

    @property
    def kind(self) -> str:
        """`pypi`, `crate` or `debian`."""
        return next(k for k in ("pypi", "crate", "debian") if getattr(self, k) is not None)

    @property
    def pin(self) -> tuple[str, str]:
        """(name, version) of the pinned source, e.g. ("click", "8.5.1")."""
        name, _, version = str(getattr(self, self.kind)).partition("==")
        return name, version


class ResultsSpec(BaseModel):
    """Where the test command writes machine-readable results, and in which format.

    Frameworks that only print their results (prove, cargo test, make check) write them to `path` with
    `tee`, e.g. `prove -lv t 2>&1 | tee /tmp/cligym-results.tap`: the results file is the command's output.
    """

    model_config = ConfigDict(extra="forbid")

    format: Literal["junit", "tap", "cargo", "automake"] = "junit"
    """The result parser to use (see `cligym_env.testing.parsers`): JUnit XML, TAP (`prove -v`), cargo's
    libtest output, or automake's `make check` output."""
    path: str = "/tmp/cligym-results.xml"
    """Absolute path inside the container; removed before each run."""


class GoldSpec(BaseModel):
    """The contents of `gold.yaml`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN)
    """Short lowercase name, also the folder name and the image name `cligym/gold-<name>`."""
    description: str = Field(min_length=1, max_length=2 << 10)  # bounds: see TaskSpec
    """One line on what the project is."""
    language: str = "python"
    """Main language of the project (for the catalogue and fault families)."""
    version: str = Field(min_length=1)
    """The exact upstream version built."""
    source: SourceSpec
    """Where the project's code comes from."""
    wheels: list[str] = Field(default_factory=list)
    """Extra requirements (test dependencies) downloaded as binary wheels into the image's wheelhouse."""
    runtime: Literal["rust"] | None = None
    """A language runtime layer the gold image starts from (built FROM the base, Debian packages only);
    None: the base itself (Python, Perl and a C toolchain are in the base)."""
    debs: list[str] = Field(default_factory=list)
    """Extra Debian packages installed in a layer under the gold (downloaded on the host, kept offline)."""
    workdir: str = "/testbed"
    """Absolute path of the project's source tree in the image; test commands run here."""
    test_command: str = Field(min_length=1, max_length=16 << 10)
    """Shell command (run with `bash -lc` in `workdir`) that runs the tests and writes `results.path`."""
    results: ResultsSpec = Field(default_factory=ResultsSpec)
    """Where and how test results are written."""
    test_timeout: int = Field(600, gt=0, le=7200)
    """Seconds after which a test run is stopped and counted as failed."""
    network: bool = False
    """Whether containers get a network (off by default: tests run offline)."""
    tags: list[str] = Field(default_factory=list)
    """Free-form labels: runtime surfaces worth breaking (cli, native, locale, subprocess, …)."""

    @field_validator("workdir")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path inside the container")
        return value

    @model_validator(mode="after")
    def _version_matches_source(self) -> GoldSpec:
        if self.source.pin[1] != self.version:
            raise ValueError(f"version '{self.version}' differs from the source's '{self.source.pin[1]}'")
        return self

    @property
    def package_name(self) -> str:
        """The PyPI distribution name from `source.pypi`."""
        return (self.source.pypi or "").split("==")[0]


class RuntimeProbe(BaseModel):
    """What the gold's tests touched at run time, seen by a probe (strace + a sitecustomize) in a fresh container."""

    model_config = ConfigDict(extra="forbid")

    python_packages: dict[str, str] = Field(default_factory=dict)
    """Distribution name -> version installed in /opt/venv (empty for non-Python golds)."""
    modules: list[str] = Field(default_factory=list)
    """Top-level Python modules imported during the test run (sys.modules of every Python process at exit)."""
    shared_libraries: list[str] = Field(default_factory=list)
    """Absolute paths of shared objects opened by test processes (strace openat of *.so*)."""
    executables: list[str] = Field(default_factory=list)
    """Absolute paths of programs exec'd during the tests (strace -f -e trace=execve)."""
    files_read: list[str] = Field(default_factory=list)
    """Files outside the workdir, /proc, /sys, /dev and /tmp opened during the tests (no .so, .py, .pyc);
    a folder with more than 20 such files is listed once, with a trailing slash."""
    env_vars: dict[str, str] = Field(default_factory=dict)
    """The image's environment (docker inspect Config.Env)."""


class GoldRecord(BaseModel):
    """What `cligym gold verify` saw: the tests that pass in a fresh container of the gold image."""

    model_config = ConfigDict(extra="forbid")

    gold: str
    image: str
    passing: list[str]
    failing: list[str] = Field(default_factory=list)
    flaky: list[str] = Field(default_factory=list)
    n_tests: int
    build_seconds: float | None = None
    test_seconds: float
    image_size_mb: float | None = None
    verified_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    runtime: RuntimeProbe | None = None
    """What the tests used at run time (see `RuntimeProbe`); None until a probe ran."""


class Gold:
    """A gold environment on disk: its folder, spec and (if verified) its record."""

    def __init__(self, path: Path, spec: GoldSpec):
        self.path = path
        self.spec = spec

    def __repr__(self) -> str:
        return f"Gold({self.spec.name!r}, {str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dockerfile(self) -> Path:
        return self.path / "Dockerfile"

    @property
    def image_repo(self) -> str:
        """Docker repository of this gold's images; tags are content hashes plus `latest`."""
        return f"cligym/gold-{self.spec.name}"

    @property
    def latest_image(self) -> str:
        return f"{self.image_repo}:latest"

    def record(self) -> GoldRecord | None:
        """The saved verification record, or None if the gold was never verified."""
        path = self.path / RECORD_FILE
        if not path.exists():
            return None
        try:
            return GoldRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))
        except (json.JSONDecodeError, ValidationError) as exc:
            detail = describe_validation_error(exc) if isinstance(exc, ValidationError) else str(exc)
            raise SpecError(
                f"{path}: {detail} (re-create it with `cligym gold verify {self.name}`)"
            ) from None

    def save_record(self, record: GoldRecord) -> Path:
        path = self.path / RECORD_FILE
        write_atomic(path, json.dumps(record.model_dump(mode="json"), indent=1) + "\n")
        return path


def load_gold(ref: str | Path, root: Path | None = None) -> Gold:
    """Load a gold by name (looked up under `root`, default `tasks/gold`) or by folder path.

    >>> load_gold("click").spec.version   # doctest: +SKIP
    '8.5.1'
    """
    path = Path(ref)
    if not (path.is_dir() or "/" in str(ref)) and re.match(NAME_PATTERN, str(ref)):
        candidates = [root] if root else gold_roots()
        path = next(
            (r / str(ref) for r in candidates if (r / str(ref) / GOLD_FILE).is_file()),
            candidates[0] / str(ref),
        )
        root = path.parent
    if path.is_file() and path.name == GOLD_FILE:
        path = path.parent
    if not path.is_dir():
        known = ", ".join(g.name for g in list_golds(root)) if (root or default_gold_root()).is_dir() else ""
        raise SpecError(
            f"gold '{ref}': no such folder {path}" + (f" (known golds: {known})" if known else "")
        )
    spec = load_yaml_model(path / GOLD_FILE, GoldSpec)
    if not (path / "Dockerfile").is_file():
        raise SpecError(f"{path}: gold has no Dockerfile")
    if spec.name != path.name and path.parent == (root or default_gold_root()):
        raise SpecError(
            f"{path / GOLD_FILE}: field 'name': '{spec.name}' differs from its folder name '{path.name}'"
        )
    return Gold(path.resolve(), spec)


def list_golds(root: Path | None = None) -> list[Gold]:
    """Every gold under `root` (default `tasks/gold`), sorted by name; a malformed one raises SpecError."""
    root = root or default_gold_root()
    if not root.is_dir():
        return []
    return [load_gold(p) for p in sorted(root.iterdir()) if (p / GOLD_FILE).is_file()]
