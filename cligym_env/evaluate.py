"""Score runs: Pass@1 and Pass@k with the unbiased estimator, bootstrap CIs over tasks, breakdowns, report.

Pass@k for one task with n samples of which c resolved is 1 - C(n-c, k) / C(n, k) (Chen et al. 2021, the
probability that at least one of k samples drawn without replacement resolves); a run's Pass@k is its mean
over the tasks that have at least k samples. The 95% interval resamples tasks with replacement (seeded).

Example:
    >>> pass_at_k(n=5, c=2, k=1), round(pass_at_k(n=5, c=2, k=2), 3)
    (0.4, 0.7)
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from cligym_env.errors import CligymError
from cligym_env.rollout import RUN_FILE, TRAJECTORIES, read_trajectories

BREAKDOWNS = ("fault_family", "category", "gold", "difficulty")
REPORT = "report.md"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased Pass@k of one task: n samples, c of them resolved (needs n >= k)."""
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def bootstrap_ci(values: list[float], n_resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of `values`, resampling them with replacement."""
    if not values:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    data = np.asarray(values, dtype=float)
    means = data[rng.integers(0, len(data), size=(n_resamples, len(data)))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def load_run(run_dir: Path) -> tuple[dict, list[dict]]:
    """run.json (or {}) and the episodes of a run folder; an error if it holds no trajectories."""
    run_dir = Path(run_dir)
    episodes = read_trajectories(run_dir / TRAJECTORIES)
    if not episodes:
        raise CligymError(
            f"{run_dir}: no trajectories ({TRAJECTORIES} missing or empty); run `cligym run` first"
        )
    config = json.loads((run_dir / RUN_FILE).read_text()) if (run_dir / RUN_FILE).is_file() else {}
    return config, episodes


def score_run(episodes: list[dict], ks: list[int], n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """Pass@k (with CIs) overall and per breakdown, plus episode statistics."""
    by_task: dict[str, list[dict]] = defaultdict(list)
    for e in episodes:
        by_task[e["task_id"]].append(e)
    tasks = {
        tid: {
            "n": len(eps),
            "c": sum(bool(e["resolved"]) for e in eps),
            **{b: eps[0].get(b) for b in BREAKDOWNS},
        }
        for tid, eps in sorted(by_task.items())
    }
    result: dict = {"n_tasks": len(tasks), "n_episodes": len(episodes), "pass": {}, "by": {}}
    for k in ks:
        values = [pass_at_k(t["n"], t["c"], k) for t in tasks.values() if t["n"] >= k]
        if values:
            low, high = bootstrap_ci(values, n_bootstrap, seed)
            result["pass"][f"pass@{k}"] = {
                "mean": float(np.mean(values)),
                "ci95": [low, high],
                "n_tasks": len(values),
            }
    for field in BREAKDOWNS:
        groups: dict[str, list[float]] = defaultdict(list)
        for t in tasks.values():
            groups[str(t[field])].append(pass_at_k(t["n"], t["c"], 1))
        result["by"][field] = {
            g: {"pass@1": float(np.mean(v)), "n_tasks": len(v)} for g, v in sorted(groups.items())
        }
    result["resolved_episodes"] = sum(bool(e["resolved"]) for e in episodes)
    result["mean_steps"] = float(np.mean([e["n_steps"] for e in episodes]))
    result["mean_wall_seconds"] = float(np.mean([e["wall_seconds"] for e in episodes]))
    result["policy_errors"] = sum(e.get("error") is not None for e in episodes)
    tokens = [
        sum(v for key, v in (e.get("usage") or {}).items() if key.endswith("_tokens")) for e in episodes
    ]
    result["total_tokens"] = int(sum(tokens))
    result["tasks"] = tasks
    return result


def evaluate_runs(
    run_dirs: list[Path], ks: list[int] = (1, 5), n_bootstrap: int = 1000, plots: bool = True
) -> dict:
    """Score every run, write report.md (+ plots) into each, and return the scores and a comparison table."""
    if not run_dirs:
        raise CligymError("name at least one run folder")
    runs = []
    for run_dir in map(Path, run_dirs):
        config, episodes = load_run(run_dir)
        score = score_run(episodes, list(ks), n_bootstrap)
        name = config.get("agent") or episodes[0].get("agent", "?")
        model = config.get("model") or episodes[0].get("model")
        split = config.get("split")
        if split not in (None, "all") and config.get("split_by", "gold") != "gold":
            split = f"{split} (by {config['split_by']})"
        runs.append({"run_dir": str(run_dir), "agent": name, "model": model, "split": split, **score})
    table = comparison_table(runs, list(ks))
    for run in runs:
        run_dir = Path(run["run_dir"])
        images = write_plots(run, run_dir) if plots else []
        (run_dir / REPORT).write_text(render_report(run, table, images), encoding="utf-8")
    return {"runs": runs, "table": table}


def _fmt(entry: dict | None) -> str:
    if not entry:
        return "-"
    low, high = entry["ci95"]
    return f"{entry['mean']:.3f} [{low:.2f}, {high:.2f}]"


def comparison_table(runs: list[dict], ks: list[int]) -> str:
    """A Markdown table with one row per run."""
    head = ["run", "agent", "split", "tasks", "episodes"] + [f"Pass@{k} [95% CI]" for k in ks]
    head += ["mean steps", "mean s", "errors"]
    rows = [
        [Path(r["run_dir"]).name, r["agent"] + (f" ({r['model']})" if r["model"] else ""), str(r["split"] or "-"),
         str(r["n_tasks"]), str(r["n_episodes"])]
        + [_fmt(r["pass"].get(f"pass@{k}")) for k in ks]
        + [f"{r['mean_steps']:.1f}", f"{r['mean_wall_seconds']:.1f}", str(r["policy_errors"])]
        for r in runs
    ]  # fmt: skip
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows]) + "\n"


def render_report(run: dict, table: str, images: list[str]) -> str:
    """The run's report.md: the comparison table, breakdowns, per-task results, plots."""
    parts = [f"# Evaluation: {Path(run['run_dir']).name}\n", table]
    for field, groups in run["by"].items():
        parts.append(
            f"\n## Pass@1 by {field.replace('_', ' ')}\n\n| {field} | tasks | Pass@1 |\n|---|---|---|"
        )
        parts += [f"| {g} | {v['n_tasks']} | {v['pass@1']:.3f} |" for g, v in groups.items()]
    parts.append("\n## Tasks\n\n| task | samples | resolved |\n|---|---|---|")
    parts += [f"| {tid} | {t['n']} | {t['c']} |" for tid, t in run["tasks"].items()]
    parts += [f"\n![{name}]({name})" for name in images]
    return "\n".join(parts) + "\n"


def write_plots(run: dict, run_dir: Path) -> list[str]:
    """PNG bar charts of Pass@1 by fault family and by gold, and Pass@k against k; returns their file names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = []
    for field in ("fault_family", "gold"):
        groups = run["by"][field]
        fig, ax = plt.subplots(figsize=(max(4, 0.8 * len(groups) + 2), 3.5))
        ax.bar(list(groups), [v["pass@1"] for v in groups.values()], color="#4878a8")
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("Pass@1")
        ax.set_title(f"{run['agent']}: Pass@1 by {field.replace('_', ' ')}")
        ax.tick_params(axis="x", labelrotation=30)
        fig.tight_layout()
        names.append(f"pass1_by_{field}.png")
        fig.savefig(run_dir / names[-1], dpi=100)
        plt.close(fig)
    if len(run["pass"]) > 1:
        ks = [int(key.split("@")[1]) for key in run["pass"]]
        fig, ax = plt.subplots(figsize=(4, 3.5))
        ax.plot(ks, [v["mean"] for v in run["pass"].values()], marker="o")
        ax.fill_between(ks, *zip(*(v["ci95"] for v in run["pass"].values()), strict=True), alpha=0.2)
        ax.set_xlabel("k")
        ax.set_ylabel("Pass@k")
        ax.set_ylim(0, 1.05)
        fig.tight_layout()
        names.append("pass_at_k.png")
        fig.savefig(run_dir / names[-1], dpi=100)
        plt.close(fig)
    return names
