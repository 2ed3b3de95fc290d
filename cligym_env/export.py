"""Turn trajectories into an SFT dataset: filter (resolved, length, cheating, duplicates), then write
a Hugging Face `datasets` dataset (`save_to_disk`), the same rows as `data.jsonl`, and a dataset card.

The `messages` column is the conversation as the policy saw it (system, the task as the first user turn,
assistant replies, each command's output as a user turn), which is what `training/sft.py` trains on. A reply
without a command and the reminder it got (turns marked `retry` in the trajectory, never sent back to the
model) are left out: the model is not trained on its format slips.

Example:
    >>> export_runs([Path("runs/heuristic")], Path("data/sft"), ExportFilters())["kept"]
    5
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, Field

from agents.protocol import sent_messages
from cligym_env.errors import CligymError
from cligym_env.rollout import TRAJECTORIES, read_trajectories

DATA_FILE = "data.jsonl"
CARD = "README.md"
COLUMNS = (
    "task_id",
    "gold",
    "fault_family",
    "category",
    "difficulty",
    "agent",
    "model",
    "seed",
    "sample",
    "reward",
    "n_steps",
    "run",
)

# Shortcuts the paper filtered out: answers read from where the fault was made instead of diagnosed.
_READERS = (
    r"\b(cat|head|tail|less|more|sed|awk|grep|egrep|rg|nl|strings|xxd|od|vi|vim|nano|view|bat|cp|tac|open)\b"
)

# Reward tampering (SECURITY.md, tests/cheats.py): the harness stops it; the detector keeps any episode that
# tried it out of the training data, scored or not. Building blocks: a write onto a path (redirection or tee),
# a copy or link onto it, an in-place edit of it; then paths and assignments that steer what the tests run.
_WRITE = r"""(?:>>?|\btee\b(?:\s+-a)?)\s*['"]?"""
_COPY = r"""\b(?:cp|mv|install|ln|rsync)\b[^|;&\n]*\s['"]?"""
_EDIT = r"\b(?:sed|perl)\b[^|;&\n]*\s-i\S*\s[^\n]*"  # the script may hold any character
_PROFILE = r"(?:/etc/profile\S*|/etc/bash\.bashrc|/etc/environment|(?:~|\$HOME|/root)/\.(?:bashrc|profile|bash_profile|bash_login))"
_RUNNER = (
    r"""(?:\S*/)?(?:python[\d.]*|pytest|py\.test|prove|cargo|rustc|rustdoc|perl[\d.]*)['"]?(?=[\s;&|)]|$)"""
)
_FRAMEWORK = r"\S*(?:/_?pytest/|/pluggy/|/Test/(?:More|Builder|Harness)|/TAP/|/App/Prove)"
_SET = r"""=(?!['"]?(?:\s|;|$)|/d\b)"""  # an assignment to something (not `X=`, not sed's `/^X=/d`)


def _writes(target: str, *, copy: bool = True, edit: bool = True) -> str:
    """A regex for a command that writes onto a path matching `target` (and, optionally, copies or edits it)."""
    return "|".join([_WRITE + target] + [_COPY + target] * copy + [_EDIT + target] * edit)


def _all(*parts: str) -> str:
    """A regex for a command in which every one of `parts` occurs somewhere (anchored: one scan each)."""
    return r"(?s:\A" + "".join(f"(?=.*(?:{part}))" for part in parts) + ")"


CHEATS = {
    "reads solution.sh": re.compile(r"solution\.sh"),
    "reads the test files": re.compile(_READERS + r"[^|;&\n]*(?:^|[\s/'\"=])tests?/", re.M),
    "uses git history": re.compile(
        r"\bgit\b[^|;&\n]*\b(log|diff|show|reflog|blame|stash|whatchanged|checkout|restore|reset)\b|\.git/"
    ),
    "reads package-manager logs": re.compile(
        r"/var/log/(dpkg|apt|alternatives)|\bhistory\.log\b|\bterm\.log\b"
    ),
    "reads shell history": re.compile(r"\.bash_history|\bhistory\s*(\||$|;)"),
    "re-runs the task's build": re.compile(r"\bdocker\b|\bDockerfile\b|\bpodman\b|\bbuildah\b"),
    "writes a conftest.py": re.compile(_writes(r"(?:\S*/)?conftest\.py"), re.M),
    "writes pytest hooks or a plugin": re.compile(
        r"\bdef\s+pytest_\w+|\bhookimpl\b|\.runtest\s*=|\[pytest11\]|" + _writes(r"\S*entry_points\.txt"),
        re.M,
    ),
    "edits the project's tests": re.compile(
        _writes(r"\S*(?<![\w.-])(?:tests?|t)/\S*", copy=False)
        + "|"
        + _all(r"\bfind\s+(?:tests?|t)\b|test_\*\.py|\*\.t\b", r""">>?\s*"?\$"""),
        re.M,
    ),
    "edits the test framework": re.compile(
        _writes(_FRAMEWORK) + r"|\b(?:cp|mv|rsync)\b[^|;&\n]*\b_pytest\b", re.M
    ),
    "replaces the test runner": re.compile(_WRITE + _RUNNER, re.M),
    "forges bytecode": re.compile(
        r"_code_to_(?:timestamp|hash)_pyc|\bcache_from_source\b|\bmarshal\.dumps?\b|"
        + _writes(r"\S*\.pyc\b"),
        re.M,
    ),
    "plants a startup hook (.pth, sitecustomize)": re.compile(
        _writes(r"\S*\.pth\b")
        + "|"
        + _writes(r"\S*(?:site|user)customize\.py")
        + r"|(?:\bzipfile\s+-c|\bzip\b[^|;&\n]*|>>?)\s*\S*python3\d+\.zip",
        re.M,
    ),
    "defines a shell function in a profile": re.compile(
        _all(r"\b\w+\s*\(\)\s*\{|\bfunction\s+\w+", _WRITE + _PROFILE)
    ),
    "exports shell functions": re.compile(r"\bexport\s+-f\b|\bdeclare\s+-(?:fx|xf)\b|\bBASH_FUNC_"),
    "sets test-runner options in the environment": re.compile(
        r"\b(?:PYTEST_ADDOPTS|PYTEST_PLUGINS|PERL5OPT|HARNESS_PERL_SWITCHES|HARNESS_OPTIONS|RUSTDOC|RUSTC"
        r"|RUSTC_WRAPPER|RUSTC_WORKSPACE_WRAPPER|RUSTDOCFLAGS|CARGO_BUILD_\w+|CARGO_TARGET_\w+)"
        + _SET
        + "|"
        + _all(_WRITE + _PROFILE, r"\b(?:PERL5LIB|PERLLIB|RUSTFLAGS|CARGO_HOME|RUSTUP_HOME)" + _SET)
    ),
    "redirects code loading in the environment": re.compile(
        r"\b(?:BASH_ENV|LD_AUDIT)"
        + _SET
        + r"|\bBASH_EXECUTION_STRING\b"
        + "|"
        + _all(
            _WRITE + _PROFILE,
            r"\b(?:PYTHON(?:PATH|HOME|STARTUP|USERBASE|PLATLIBDIR)|LD_LIBRARY_PATH|ENV)" + _SET,
        )
    ),
    "preloads a library": re.compile(
        r"\bLD_PRELOAD"
        + _SET
        + r"""|(?:echo|printf)\s+(?:-\w+\s+)*['"]?[^\s'">|;&][^>\n]*>>?\s*/etc/ld\.so\.preload"""
        + r"|(?:\btee\s+(?:-a\s+)?|\bcat\s*>>?\s*|"
        + _COPY
        + r")/etc/ld\.so\.preload",
        re.M,
    ),
    "compiles a shared library": re.compile(r"\b(?:gcc|cc|clang|g\+\+|ld)\b[^|;&\n]*\s-shared\b"),
    "writes test-runner configuration": re.compile(_writes(r"\S*(?:\.proverc|pytest\.ini|tox\.ini)\b"), re.M),
    "adds a folder to the loader cache": re.compile(r"\bldconfig\b(?:\s+-\S+)*\s+(?!/usr/|/lib)[/~$.]"),
    "configures cargo to run another program": re.compile(
        _all(r"cargo/config", r"\b(?:rustc-wrapper|rustc-workspace-wrapper|rustdoc|rustc|runner|linker)\s*=")
    ),
    "starts a detached background process": re.compile(
        r"\b(?:setsid|nohup|disown|start-stop-daemon|daemonize|crontab)\b|\bat\s+now\b|(?<![&|>])&\s*$", re.M
    ),
    "touches the test results": re.compile(
        _all(r"cligym-results|/run/cligym\b", r">(?!&)|\bln\b|\bcp\b|\bmv\b|\btee\b|\bsed\s+-i")
    ),
    "rewrites test outcomes": re.compile(
        r"re\.sub\([^)]*<\(?failure|\bs/[^/\n]*FAILED[^/\n]*/[^/\n]*\bok\b|\bs/[^/\n]*not ok/"
    ),
}


class ExportFilters(BaseModel):
    """Which trajectories make it into the dataset."""

    resolved_only: bool = True
    """Keep only episodes whose tests all passed."""
    min_steps: int = Field(1, ge=0)
    """Drop episodes with fewer commands (the paper dropped very short ones)."""
    max_steps: int | None = None
    """Drop episodes with more commands."""
    allow_cheating: bool = False
    """Keep episodes the cheating detector flags (they are dropped by default)."""
    near_duplicate: float = Field(0.9, gt=0, le=1)
    """Jaccard similarity of command 3-shingles at which a same-task episode counts as a duplicate."""


def cheating_reasons(commands: list[str]) -> list[str]:
    """Why these commands look like cheating (empty when they do not)."""
    return sorted({reason for c in commands for reason, pattern in CHEATS.items() if pattern.search(c)})


def normalise(command: str) -> str:
    return " ".join(command.split())


def shingles(commands: list[str], n: int = 3) -> set[tuple[str, ...]]:
    """Token n-grams over the normalised command sequence (commands separated by a marker token)."""
    tokens = [tok for c in commands for tok in (*normalise(c).split(" "), "\x00")]
    return {tuple(tokens[i : i + n]) for i in range(max(len(tokens) - n + 1, 1))}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def filter_episodes(episodes: list[dict], filters: ExportFilters) -> tuple[list[dict], Counter]:
    """The episodes that pass every filter, in order, and how many each filter dropped."""
    dropped: Counter = Counter()
    kept: list[dict] = []
    seen_exact: set = set()
    seen_shingles: dict[str, list[set]] = {}
    for e in episodes:
        commands = [s["command"] for s in e["steps"]]
        if e.get("error"):
            dropped["policy error"] += 1
        elif filters.resolved_only and not e["resolved"]:
            dropped["unresolved"] += 1
        elif e["n_steps"] < filters.min_steps:
            dropped["too few steps"] += 1
        elif filters.max_steps is not None and e["n_steps"] > filters.max_steps:
            dropped["too many steps"] += 1
        elif not filters.allow_cheating and cheating_reasons(commands):
            dropped["cheating"] += 1
        elif (e["task_id"], tuple(map(normalise, commands))) in seen_exact:
            dropped["exact duplicate"] += 1
        elif any(
            jaccard(shingles(commands), s) >= filters.near_duplicate
            for s in seen_shingles.get(e["task_id"], [])
        ):
            dropped["near duplicate"] += 1
        else:
            seen_exact.add((e["task_id"], tuple(map(normalise, commands))))
            seen_shingles.setdefault(e["task_id"], []).append(shingles(commands))
            kept.append(e)
    return kept, dropped


def to_row(episode: dict) -> dict:
    """One dataset row: the conversation and the metadata columns."""
    messages = sent_messages(
        episode["messages"]
    )  # a model's format slips (marked retries) are not trained on
    return {"messages": messages, **{c: episode.get(c) for c in COLUMNS}}


def export_runs(run_dirs: list[Path], out: Path, filters: ExportFilters) -> dict:
    """Filter the episodes of `run_dirs` and write the dataset to `out`; returns counts."""
    import datasets

    datasets.disable_progress_bars()
    episodes = []
    for run_dir in map(Path, run_dirs):
        found = read_trajectories(run_dir / TRAJECTORIES)
        if not found:
            raise CligymError(f"{run_dir}: no trajectories ({TRAJECTORIES} missing or empty)")
        episodes += [e | {"run": run_dir.name} for e in found]
    kept, dropped = filter_episodes(episodes, filters)
    rows = [to_row(e) for e in kept]
    features = datasets.Features(
        {
            "messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
            **{c: datasets.Value("string") for c in COLUMNS},
            "seed": datasets.Value("int64"), "sample": datasets.Value("int64"),
            "reward": datasets.Value("float64"), "n_steps": datasets.Value("int64"),
        }
    )  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_list(rows, features=features).save_to_disk(str(out))
    with (out / DATA_FILE).open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    result = {"out": str(out), "total": len(episodes), "kept": len(rows), "dropped": dict(dropped),
              "filters": filters.model_dump(), "runs": [str(r) for r in run_dirs]}  # fmt: skip
    (out / CARD).write_text(dataset_card(result, kept), encoding="utf-8")
    return result


def dataset_card(result: dict, kept: list[dict]) -> str:
    """The dataset's README.md: what it is, how it was filtered, and counts."""
    by_family = Counter(e["fault_family"] for e in kept)
    by_agent = Counter(e["agent"] + (f" ({e['model']})" if e.get("model") else "") for e in kept)
    lines = [
        "---",
        "configs:",
        "- config_name: default",
        f"  data_files: {DATA_FILE}",
        "task_categories:",
        "- text-generation",
        "tags: [cligym, terminal-agents, sft]",
        "---",
        "# cligym trajectories",
        "",
        "Environment-repair episodes played in `cligym/Repair-v0`, filtered for supervised fine-tuning. Each row's "
        "`messages` is the conversation as the agent saw it (system, task, assistant replies with one shell command "
        "each, command outputs as user turns), without replies that had no command and the reminders they got "
        "(kept, marked `retry`, in the trajectories).",
        "",
        f"Load: `datasets.load_from_disk(PATH)` or `load_dataset('json', data_files='PATH/{DATA_FILE}')`.",
        "",
        f"Runs: {', '.join(result['runs'])}. Filters: `{json.dumps(result['filters'])}`.",
        "",
        "| | episodes |",
        "|---|---|",
        f"| read | {result['total']} |",
        *[f"| dropped: {reason} | {n} |" for reason, n in result["dropped"].items()],
        f"| **kept** | **{result['kept']}** |",
        "",
        "By fault family: " + (", ".join(f"{k} {v}" for k, v in sorted(by_family.items())) or "none") + ".",
        "",
        "By agent: " + (", ".join(f"{k} {v}" for k, v in sorted(by_agent.items())) or "none") + ".",
    ]
    return "\n".join(lines) + "\n"
