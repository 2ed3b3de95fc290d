"""The task set as a Hugging Face dataset: one row a task, a dataset card, and the way back into cligym.

`export_task_set(tasks, out)` writes `out` with `save_to_disk` (load it with `datasets.load_from_disk`, or push
it with `Dataset.push_to_hub`) and a `README.md` card: what a row holds, the set's figures, each gold's source
and license, how to load it. A row carries the task's own files verbatim (`task_yaml`, `dockerfile`,
`solution`, the `files/` a break needs, the stored broken output) beside flat columns to filter on, plus its
gold's Dockerfile and source reference, so `import_task_set` gives back the same task folders, byte for byte.
"""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

from cligym_env.errors import CligymError, SpecError
from cligym_env.specs import load_yaml_model
from cligym_env.task import BROKEN_OUTPUT_FILE, SOLUTION_FILE, TASK_FILE, Task, TaskSpec

CARD = "README.md"


def _features():
    from datasets import Features, Sequence, Value

    text = Value("string")
    return Features(
        {
            "id": text, "gold": text, "title": text, "instruction": text, "hint": text, "category": text,
            "fault_family": text, "difficulty": text, "signature": text, "test_command": text,
            "results_format": text, "workdir": text, "network": Value("bool"),
            "fail_to_pass": Sequence(text), "pass_to_pass": Sequence(text),
            "dockerfile": text, "solution": text, "task_yaml": text, "broken_output": text,
            "files": [{"path": text, "data": Value("binary")}],  # a list of structs (Sequence(dict) is columns)
            "gold_dockerfile": text, "gold_source": text, "gold_version": text, "gold_license": text,
        }
    )  # fmt: skip


def task_row(task: Task, licenses: dict[str, str]) -> dict:
    """One task as a dataset row (see the module docstring)."""
    from cligym_env.gold import load_gold

    spec = task.spec
    gold = load_gold(spec.gold)
    if spec.gold not in licenses:  # read once per gold, not once per task
        licenses[spec.gold] = gold_license(spec.gold)
    source = gold.spec.source
    reference = source.pypi or source.crate or source.debian or ""
    kind = "pypi" if source.pypi else "crate" if source.crate else "debian"
    files = task.path / "files"
    broken = task.path / BROKEN_OUTPUT_FILE
    return {
        "id": spec.id, "gold": spec.gold, "title": spec.title, "instruction": spec.instruction,
        "hint": spec.hint, "category": spec.category, "fault_family": spec.fault_family,
        "difficulty": spec.difficulty, "signature": spec.signature, "test_command": spec.test_command,
        "results_format": spec.results.format, "workdir": spec.workdir, "network": spec.network,
        "fail_to_pass": list(spec.fail_to_pass), "pass_to_pass": list(spec.pass_to_pass),
        "dockerfile": task.dockerfile.read_text(encoding="utf-8"), "solution": task.solution_script(),
        "task_yaml": (task.path / TASK_FILE).read_text(encoding="utf-8"),
        "broken_output": broken.read_text(encoding="utf-8") if broken.is_file() else None,
        "files": [
            {"path": str(p.relative_to(files)), "data": p.read_bytes()}
            for p in sorted(files.rglob("*")) if p.is_file()
        ] if files.is_dir() else [],
        "gold_dockerfile": gold.dockerfile.read_text(encoding="utf-8"),
        "gold_source": f"{kind}:{reference}", "gold_version": gold.spec.version,
        "gold_license": licenses[spec.gold],
    }  # fmt: skip


def gold_license(name: str) -> str:
    """The gold project's license as its packaged metadata states it (the sdist's PKG-INFO in the gold's build
    context, or a Cargo.toml), else "unknown (see the project's page)"."""
    from cligym_env.runtime.cache import cache_dir

    for context in sorted(cache_dir("contexts").glob(f"gold-{name}-*")):
        info = context / "src" / "PKG-INFO"
        if info.is_file():
            expression, plain, classifiers = None, None, []
            for line in info.read_text(encoding="utf-8", errors="replace").split("\n\n", 1)[0].splitlines():
                key, _, value = line.partition(": ")
                if key == "License-Expression":
                    expression = value.strip()
                elif key == "License" and value.strip() and len(value) < 80:
                    plain = value.strip()
                elif key == "Classifier" and value.startswith("License :: "):
                    classifiers.append(value.rsplit(" :: ", 1)[-1])
            found = expression or plain or ", ".join(classifiers)
            if found:
                return found
        cargo = context / "src" / "Cargo.toml"
        if cargo.is_file():
            for line in cargo.read_text(encoding="utf-8", errors="replace").splitlines():
                if line.replace(" ", "").startswith("license="):
                    return line.split("=", 1)[1].strip().strip('"')
    return "unknown (see the project's page)"


def export_task_set(tasks: list[Task], out: Path) -> dict:
    """Write `tasks` as a dataset (`save_to_disk`) with its card into `out`; returns a summary."""
    from datasets import Dataset

    if not tasks:
        raise CligymError("no tasks to export")
    licenses: dict[str, str] = {}
    rows = [task_row(t, licenses) for t in sorted(tasks, key=lambda t: t.id)]
    dataset = Dataset.from_list(rows, features=_features())
    out.mkdir(parents=True, exist_ok=True)
    dataset.save_to_disk(str(out))
    (out / CARD).write_text(dataset_card(rows, licenses), encoding="utf-8")
    return {"out": str(out), "tasks": len(rows), "golds": len(licenses)}


def dataset_card(rows: list[dict], licenses: dict[str, str]) -> str:
    """The dataset card: what a row holds, figures, golds with source and license, how to load."""
    families = Counter(f for r in rows for f in r["fault_family"].split("+"))
    categories = Counter(r["category"] for r in rows)
    difficulty = Counter(r["difficulty"] or "uncalibrated" for r in rows)
    partial = sum(bool(r["pass_to_pass"]) for r in rows)
    sources = {r["gold"]: r["gold_source"] for r in rows}
    lines = [
        "---", "license: other", "task_categories:", "- text-generation", "tags:", "- agents", "- terminal",
        "- environment-repair", "- cligym", "---", "", "# cligym environment-repair tasks", "",
        f"{len(rows)} tasks on {len(sources)} gold projects, made by environment inversion with cligym: each row is "
        "a broken environment (a Dockerfile on top of its gold's image), the tests that fail in it "
        "(`fail_to_pass`) and still pass (`pass_to_pass`), a problem statement that gives the symptom, not the "
        "cause, and a verified repair (`solution`).", "",
        "## Load", "", "```python", "from datasets import load_from_disk", 'tasks = load_from_disk("PATH")',
        "```", "",
        "Back into task folders (to play them as `cligym/Repair-v0` or re-validate them): "
        "`cligym tasks import PATH --out tasks/generated`. Images build offline from the gold's Dockerfile and "
        "source reference (`cligym gold build NAME`).", "",
        "## Columns", "",
        "`id`, `gold`, `title`, `instruction`, `hint`, `category`, `fault_family`, `difficulty` (calibrated by "
        "cligym's heuristic repair agent; null when not calibrated), `signature`, `test_command`, "
        "`results_format`, `workdir`, `network`, `fail_to_pass`, `pass_to_pass`; the task's own files verbatim: "
        "`task_yaml`, `dockerfile`, `solution`, `broken_output` (the broken run's output), `files` (what the "
        "break copies in, e.g. a wheel); its gold: `gold_dockerfile`, `gold_source` (`pypi:NAME==VER`, "
        "`crate:...`, `debian:...`), `gold_version`, `gold_license`.", "",
        "## Figures", "",
        f"- keep some tests passing: {partial} of {len(rows)}",
        f"- categories: {', '.join(f'{c} {n}' for c, n in categories.most_common())}",
        f"- difficulty: {', '.join(f'{d} {n}' for d, n in difficulty.most_common())}",
        f"- fault families ({len(families)}): {', '.join(f'{f} {n}' for f, n in families.most_common())}", "",
        "## Gold projects and their licenses", "",
        "The tasks contain no project source; each gold's source is fetched from its registry when its image is "
        "built. Their licenses, as their packages state them:", "",
        "| gold | source | license |", "| --- | --- | --- |",
        *[f"| {g} | `{sources[g]}` | {licenses.get(g, 'unknown')} |" for g in sorted(sources)],
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def is_task_set(folder: Path) -> bool:
    """Whether `folder` holds a dataset written by `export_task_set`."""
    return (folder / "dataset_info.json").is_file() and (folder / "state.json").is_file()


def import_task_set(folder: Path, out_root: Path, skip_existing: bool = True) -> tuple[list[str], list[str]]:
    """Task folders under `out_root` from a dataset written by `export_task_set`: (imported ids, skipped ids)."""
    from datasets import load_from_disk

    from cligym_env.specs import write_atomic

    try:
        dataset = load_from_disk(str(folder))
    except Exception as exc:  # noqa: BLE001 - whatever datasets raises, one clear error
        raise SpecError(
            f"{folder}: not a dataset saved by `cligym tasks export --format hf`: {exc}"
        ) from None
    missing = {"id", "task_yaml", "dockerfile", "solution", "files"} - set(dataset.column_names)
    if missing:
        raise SpecError(f"{folder}: not a cligym task set (no column {', '.join(sorted(missing))})")
    made, skipped = [], []
    for row in dataset:
        dest = out_root / row["id"]
        if dest.exists() and skip_existing:
            skipped.append(row["id"])
            continue
        staging = out_root / f".{row['id']}.importing"
        staging.mkdir(parents=True, exist_ok=True)
        write_atomic(staging / TASK_FILE, row["task_yaml"])
        spec = load_yaml_model(staging / TASK_FILE, TaskSpec)  # refused here, before anything is in place
        if spec.id != row["id"]:
            raise SpecError(f"{folder}: row {row['id']}: its task_yaml has id '{spec.id}'")
        write_atomic(staging / "Dockerfile", row["dockerfile"])
        write_atomic(staging / SOLUTION_FILE, row["solution"])
        (staging / SOLUTION_FILE).chmod(0o755)
        if row.get("broken_output") is not None:
            write_atomic(staging / BROKEN_OUTPUT_FILE, row["broken_output"])
        for item in row["files"] or []:
            target = (staging / "files" / item["path"]).resolve()
            if not target.is_relative_to((staging / "files").resolve()):
                raise SpecError(
                    f"{folder}: row {row['id']}: file path {item['path']!r} leaves the task folder"
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(item["data"])
        if dest.exists():  # not skipped: replaced by the imported one
            shutil.rmtree(dest)
        staging.replace(dest)
        made.append(row["id"])
    return made, skipped
