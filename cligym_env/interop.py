"""Export tasks to the Terminal-Bench and Harbor task layouts, and import such exports back.

Terminal-Bench (one folder a task)::

    task.yaml  Dockerfile  docker-compose.yaml  solution.sh  run-tests.sh  tests/  cligym-task.yaml

Harbor::

    instruction.md  task.toml  environment/Dockerfile  solution/solve.sh  tests/test.sh  tests/…  cligym-task.yaml

The exported Dockerfile builds on its own: `ARG CLIGYM_GOLD_IMAGE` gets the local gold image as its default
(build it first with `cligym gold build NAME`; nothing is pulled). The tests run the task's own test command,
then `tests/check_results.py` (stdlib only) reads its results with the harness's own parsers (shipped as
`tests/cligym_parsers.py`: JUnit, TAP, cargo, automake) and checks every FAIL_TO_PASS and PASS_TO_PASS test. It
prints one pytest-style verdict, `PASSED cligym::all_expected_tests` or `FAILED ...`, for Terminal-Bench's pytest
parser (which keys a test by the text after its first `::`, so per-test lines could let a passing test hide a
failing one of the same name), and exits 0 only when all pass (Harbor's `test.sh` turns that into
`/logs/verifier/reward.txt`).
`cligym-task.yaml` is the task's own spec, so `import` gives back an equivalent task.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import yaml

from cligym_env.errors import SpecError
from cligym_env.specs import dump_yaml_model, load_yaml_model
from cligym_env.task import Task, TaskSpec, write_task
from cligym_env.testing import parsers

FORMATS = ("terminal-bench", "harbor")
SPEC_FILE = "cligym-task.yaml"
PARSERS_FILE = "cligym_parsers.py"
_ARG = re.compile(r"^ARG CLIGYM_GOLD_IMAGE(=\S*)?$", re.M)

CHECK_RESULTS = r'''"""Check the task's results against its expected tests (stdlib only; exit 0 = all pass).

The results (JUnit XML, or the TAP / cargo / automake output the test command tee'd) are read by
cligym_parsers.py, the harness's own parsers. One verdict line is printed for the benchmark's pytest parser,
`PASSED cligym::all_expected_tests` or `FAILED ...`: a line per test would be keyed by the text after its first
`::`, where two tests of different classes or files can share a name and a passing one hide a failing one.
"""
import json, os, sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
from cligym_parsers import Outcome, parse_results  # noqa: E402

expected = json.load(open(os.path.join(here, "expected.json")))
try:
    with open(expected["results_path"], "rb") as handle:
        outcomes = parse_results(expected.get("format", "junit"), handle.read())
except Exception as exc:  # no results file, or one that cannot be read: nothing passed
    print("no readable results at %s: %s" % (expected["results_path"], exc))
    outcomes = {}
wanted = expected["fail_to_pass"] + expected["pass_to_pass"]
bad = [t for t in wanted if outcomes.get(t) is not Outcome.PASSED]
for test_id in wanted:
    print(("  ok     " if test_id not in bad else "  NOT OK ") + test_id)
print("%d of %d expected tests pass" % (len(wanted) - len(bad), len(wanted)))
print("=========================== short test summary info ============================")
print(("FAILED " if bad else "PASSED ") + "cligym::all_expected_tests")
sys.exit(1 if bad else 0)
'''

COMPOSE = """services:
  client:
    build:
      dockerfile: Dockerfile
    image: ${T_BENCH_TASK_DOCKER_CLIENT_IMAGE_NAME}
    container_name: ${T_BENCH_TASK_DOCKER_CLIENT_CONTAINER_NAME}
    command: [ "sh", "-c", "sleep infinity" ]
    environment:
      - TEST_DIR=${T_BENCH_TEST_DIR}
    volumes:
      - ${T_BENCH_TASK_LOGS_PATH}:${T_BENCH_CONTAINER_LOGS_PATH}
      - ${T_BENCH_TASK_AGENT_LOGS_PATH}:${T_BENCH_CONTAINER_AGENT_LOGS_PATH}
"""


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as `|` blocks, as people write task.yaml by hand."""


_BlockDumper.add_representer(
    str, lambda d, s: d.represent_scalar("tag:yaml.org,2002:str", s, style="|" if "\n" in s else None)
)


def gold_image_of(task: Task) -> str:
    return f"cligym/gold-{task.spec.gold}:latest"


def standalone_dockerfile(task: Task) -> str:
    """The task's Dockerfile with the gold image as the default of `ARG CLIGYM_GOLD_IMAGE`, without its title
    comment (it names the fault: a benchmark's logs and reviewers need not see the answer; import puts it back)."""
    text = task.dockerfile.read_text(encoding="utf-8").removeprefix(_title_line(task.spec))
    return _ARG.sub(f"ARG CLIGYM_GOLD_IMAGE={gold_image_of(task)}", text, count=1)


def _title_line(spec: TaskSpec) -> str:
    return f"# {spec.title}\n"


def _test_script(spec: TaskSpec, tests_dir: str) -> str:
    return (
        "#!/usr/bin/env bash\n# Run the project's tests, then check the expected tests' outcomes.\n"
        f"cd {spec.workdir}\nrm -f {spec.results.path}\n"
        f"timeout {int(spec.timeouts.tests)} bash -lc {json.dumps(spec.test_command)} || true\n"
        f'for py in python3 /usr/bin/python3 /opt/venv/bin/python; do command -v "$py" >/dev/null && break; done\n'
        f'"$py" {tests_dir}/check_results.py\n'
    )


def _write_tests(spec: TaskSpec, tests: Path) -> None:
    tests.mkdir(parents=True, exist_ok=True)
    expected = {
        "results_path": spec.results.path,
        "format": spec.results.format,
        "fail_to_pass": spec.fail_to_pass,
        "pass_to_pass": spec.pass_to_pass,
    }
    (tests / "expected.json").write_text(json.dumps(expected, indent=1) + "\n", encoding="utf-8")
    (tests / "check_results.py").write_text(CHECK_RESULTS, encoding="utf-8")
    shutil.copyfile(Path(parsers.__file__), tests / PARSERS_FILE)


def _executable(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


def export_task(task: Task, out_root: Path, fmt: str) -> Path:
    """Write `task` in layout `fmt` to `out_root/<id>/`; returns that folder."""
    if fmt not in FORMATS:
        raise SpecError(f"unknown format '{fmt}' (use {' or '.join(FORMATS)})")
    spec, dest = task.spec, out_root / task.id
    if dest.exists():
        shutil.rmtree(dest)
    env_dir = dest if fmt == "terminal-bench" else dest / "environment"
    env_dir.mkdir(parents=True)
    (env_dir / "Dockerfile").write_text(standalone_dockerfile(task), encoding="utf-8")
    if (task.path / "files").is_dir():
        shutil.copytree(task.path / "files", env_dir / "files")
    (dest / SPEC_FILE).write_text(dump_yaml_model(spec), encoding="utf-8")
    tags = ["cligym", spec.fault_family, spec.gold]
    if fmt == "terminal-bench":
        meta = {
            "instruction": spec.prompt(), "author_name": "cligym", "author_email": "unknown",
            "difficulty": spec.difficulty or "medium", "category": spec.category, "tags": tags,
            "parser_name": "pytest", "max_agent_timeout_sec": spec.timeouts.episode,
            "max_test_timeout_sec": spec.timeouts.tests + 60, "run_tests_in_same_shell": False,
        }  # fmt: skip
        (dest / "task.yaml").write_text(
            yaml.dump(meta, Dumper=_BlockDumper, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
        compose = (
            COMPOSE
            if spec.network
            else COMPOSE.replace("    command:", "    network_mode: none\n    command:", 1)
        )
        (dest / "docker-compose.yaml").write_text(compose, encoding="utf-8")
        _executable(dest / "solution.sh", task.solution_script())
        _executable(dest / "run-tests.sh", _test_script(spec, '"$TEST_DIR"'))
        _write_tests(spec, dest / "tests")
    else:
        (dest / "instruction.md").write_text(spec.prompt().rstrip() + "\n", encoding="utf-8")
        (dest / "task.toml").write_text(_harbor_toml(spec, tags), encoding="utf-8")
        _executable(dest / "solution" / "solve.sh", task.solution_script())
        test_sh = _test_script(spec, "/tests").rsplit("\n", 2)[0] + "\n"
        test_sh += '"$py" /tests/check_results.py && reward=1 || reward=0\n'
        test_sh += 'mkdir -p /logs/verifier && echo "$reward" > /logs/verifier/reward.txt\n'
        _executable(dest / "tests" / "test.sh", test_sh)
        _write_tests(spec, dest / "tests")
    return dest


def _harbor_toml(spec: TaskSpec, tags: list[str]) -> str:
    def q(value: str) -> str:
        return json.dumps(value)  # a JSON string is a valid TOML basic string

    return "\n".join(
        [
            'version = "1.0"', "", "[metadata]", 'author_name = "cligym"',
            f"difficulty = {q(spec.difficulty or 'medium')}", f"category = {q(spec.category)}",
            f"tags = [{', '.join(map(q, tags))}]", f"cligym_id = {q(spec.id)}", "",
            "[verifier]", f"timeout_sec = {spec.timeouts.tests + 60}", "",
            "[agent]", f"timeout_sec = {spec.timeouts.episode}", "",
            "[environment]", "build_timeout_sec = 600.0", "cpus = 2", "memory_mb = 4096",
            f"allow_internet = {'true' if spec.network else 'false'}", "",
        ]
    )  # fmt: skip


def import_task(folder: Path, out_root: Path) -> Task:
    """Make a cligym task folder under `out_root` from a Terminal-Bench or Harbor export of one."""
    spec_file = folder / SPEC_FILE
    if not spec_file.is_file():
        raise SpecError(
            f"{folder}: no {SPEC_FILE}, so not a cligym export; tasks from elsewhere have no gold environment "
            "and test ids to check, which a cligym task needs"
        )
    spec = load_yaml_model(spec_file, TaskSpec)
    layout = "harbor" if (folder / "task.toml").is_file() else "terminal-bench"
    env_dir = folder / "environment" if layout == "harbor" else folder
    solution = folder / ("solution/solve.sh" if layout == "harbor" else "solution.sh")
    for needed in (env_dir / "Dockerfile", solution):
        if not needed.is_file():
            raise SpecError(f"{folder}: {layout} task has no {needed.relative_to(folder)}")
    dockerfile = _ARG.sub(
        "ARG CLIGYM_GOLD_IMAGE", (env_dir / "Dockerfile").read_text(encoding="utf-8"), count=1
    )
    if not dockerfile.startswith(_title_line(spec)):  # the title comment the export left out
        dockerfile = _title_line(spec) + dockerfile
    task = write_task(out_root, spec, dockerfile, solution.read_text(encoding="utf-8"))
    if (env_dir / "files").is_dir():
        shutil.copytree(env_dir / "files", task.path / "files")
    return task
