"""Rollouts against real containers: baselines, the llm agent over HTTP, resuming a killed run, splits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from llm_server import ScriptedChatServer, turns
from samples import sampled_tasks

from agents.llm import FORMAT_ERROR
from agents.prompt import format_reply, submit_reply
from cligym_env.errors import CligymError
from cligym_env.evaluate import evaluate_runs
from cligym_env.export import ExportFilters, export_runs, to_row
from cligym_env.rollout import RunConfig, read_trajectories, run_rollouts, select_tasks
from cligym_env.runtime import containers
from cligym_env.splits import split_of, splits_of

GENERATED = Path(__file__).resolve().parent.parent / "tasks" / "generated"
FAST = [
    str(GENERATED / t)
    for t in ("python-slugify-missing-dependency", "tabulate-wide-chars", "markupsafe-speedups-gone")
]
FIELDS = {"task_id", "gold", "fault_family", "agent", "model", "seed", "sample", "messages", "steps", "reward",
          "resolved", "tests", "n_steps", "wall_seconds", "error", "usage"}  # fmt: skip


def run(agent: str, out: Path, tasks=FAST, **kw) -> tuple[dict, list[dict]]:
    summary = run_rollouts(RunConfig(agent=agent, tasks=tasks, out=str(out), workers=2, **kw), progress=False)
    return summary, read_trajectories(out / "trajectories.jsonl")


@pytest.fixture(scope="module")
def oracle_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("runs") / "oracle"
    summary, episodes = run("oracle", out)
    assert summary["failed"] == [], summary
    return out


def test_oracle_resolves_every_task_and_writes_the_schema(oracle_run):
    episodes = read_trajectories(oracle_run / "trajectories.jsonl")
    assert sorted(e["task_id"] for e in episodes) == sorted(Path(t).name for t in FAST)
    assert all(e["resolved"] and e["reward"] == 1.0 and e["stop"] == "submit" for e in episodes)
    e = episodes[0]
    assert set(e) >= FIELDS and e["n_steps"] == len(e["steps"]) == 1
    assert [m["role"] for m in e["messages"]] == ["system", "user", "assistant", "user", "assistant"]
    assert set(e["steps"][0]) >= {"command", "output", "exit_code", "seconds", "timed_out"}
    assert json.loads((oracle_run / "run.json").read_text())["agent"] == "oracle"


def test_rerun_skips_finished_episodes_and_eval_export_work_on_a_real_run(oracle_run, tmp_path):
    summary, episodes = run("oracle", oracle_run)
    assert summary["played"] == 0 and summary["skipped"] == 3 and len(episodes) == 3
    result = evaluate_runs([oracle_run], ks=[1], n_bootstrap=100)
    assert result["runs"][0]["pass"]["pass@1"]["mean"] == 1.0
    assert (oracle_run / "report.md").is_file() and (oracle_run / "pass1_by_gold.png").stat().st_size > 1000
    exported = export_runs([oracle_run], tmp_path / "data", ExportFilters())
    assert exported["kept"] == 3


def test_noop_resolves_nothing(tmp_path):
    summary, episodes = run("noop", tmp_path / "noop")
    assert summary["played"] == 3 and not any(e["resolved"] for e in episodes)
    assert all(e["n_steps"] == 0 and 0 < e["tests"]["fraction"] < 1 for e in episodes)


@pytest.mark.slow
def test_heuristic_resolves_the_missing_dependency_tasks(tmp_path):
    summary, episodes = run("heuristic", tmp_path / "heuristic", tasks=FAST[:2])
    assert summary["resolved"] == 2, [(e["task_id"], [s["command"] for s in e["steps"]]) for e in episodes]


def solver(messages, number):
    if turns(messages) == 0:
        return format_reply("text_unidecode is missing; install it.", "pip install text-unidecode")
    return submit_reply()


def never(messages, number):
    return format_reply("Look around.", "ls")


def flaky(messages, number):
    """Malformed output, a 429, a 500, one good command; then the endpoint stays down."""
    return {1: "I am not sure what to do.", 2: 429, 3: 500, 4: format_reply("Look.", "pwd")}.get(number, 503)


def test_llm_agent_over_http_solves_fails_and_survives_errors(tmp_path):
    task = [FAST[0]]
    options = {"model": "scripted", "backoff_seconds": 0.01, "api_retries": 2, "api_key": "secret-key"}
    for name, script in (("solver", solver), ("never", never), ("flaky", flaky)):
        with ScriptedChatServer(script) as server:
            out = tmp_path / name
            summary, episodes = run(
                "llm", out, tasks=task, max_steps=3, options=options | {"base_url": server.base_url}
            )
        [e] = episodes
        assert summary["failed"] == [] and e["model"] == "scripted"
        assert "secret-key" not in (out / "run.json").read_text()
        if name == "solver":
            assert e["resolved"] and e["steps"][0]["command"] == "pip install text-unidecode"
            assert e["usage"]["prompt_tokens"] > 0
        elif name == "never":
            assert not e["resolved"] and e["stop"] == "max_steps" and e["n_steps"] == 3
        else:
            assert not e["resolved"] and e["reward"] == 0.0 and "failed 3 times" in e["error"]
            assert e["steps"][0]["command"] == "pwd" and e["usage"]["format_errors"] == 1
            # The trajectory holds what the model saw: the reply without a command and its reminder, marked.
            retried = [m for m in e["messages"] if m.get("retry")]
            assert [m["content"] for m in retried] == ["I am not sure what to do.", FORMAT_ERROR]
            assert e["messages"].index(retried[0]) == 2  # right after the task, before the accepted reply
            assert all("retry" not in m for m in to_row(e)["messages"])
            assert "I am not sure what to do." not in str(to_row(e)["messages"])


def tool_solver(messages, number):
    if not any(m["role"] == "tool" for m in messages):
        return {"content": "text_unidecode is missing.",
                "tool_calls": [{"name": "bash", "arguments": json.dumps({"command": "pip install text-unidecode"})}]}  # fmt: skip
    return {"content": None, "tool_calls": [{"name": "submit"}]}


def test_llm_agent_with_native_tool_calls_solves_and_records_text_and_calls(tmp_path):
    options = {"model": "scripted", "api_key": "k", "tool_calls": True}
    with ScriptedChatServer(tool_solver) as server:
        summary, episodes = run("llm", tmp_path / "tools", tasks=[FAST[0]], max_steps=4,
                                options=options | {"base_url": server.base_url})  # fmt: skip
    [e] = episodes
    assert summary["failed"] == [] and e["resolved"] and e["stop"] == "submit"
    assert e["steps"][0]["command"] == "pip install text-unidecode"
    replies = [m for m in e["messages"] if m["role"] == "assistant"]
    assert [m["tool_call"]["name"] for m in replies] == ["bash", "submit"]
    assert "```bash\npip install text-unidecode\n```" in replies[0]["content"]  # the text format, for SFT
    assert "tool_call" not in str(to_row(e)["messages"])


def test_a_slow_model_cannot_stretch_an_episode_past_its_time_limit(tmp_path):
    """The request is cut short at the episode's deadline, and the episode ends as at its time limit."""
    slow = {"delay": 30, "content": format_reply("Look.", "ls")}
    options = {"model": "scripted", "backoff_seconds": 0.01, "api_key": "k", "timeout_seconds": 120}
    with ScriptedChatServer(lambda messages, n: format_reply("Look.", "ls") if n == 1 else slow) as server:
        started = time.monotonic()
        summary, episodes = run("llm", tmp_path / "slow", tasks=[FAST[0]], max_steps=5, episode_timeout=6,
                                options=options | {"base_url": server.base_url})  # fmt: skip
        took = time.monotonic() - started
    [e] = episodes
    assert summary["failed"] == [] and e["stop"] == "time_limit" and e["error"] is None
    assert e["n_steps"] == 1 and e["wall_seconds"] < 30, e["wall_seconds"]  # not 30 s of waiting, nor 120
    assert took < 60


def vandal(messages, number):
    return format_reply("Stop everything.", "kill -9 -1; kill 1")


def test_an_agent_that_kills_its_container_is_a_played_episode(tmp_path):
    """Not an infrastructure failure: the episode is recorded (reward 0, the reason kept) and not retried."""
    options = {"model": "scripted", "backoff_seconds": 0.01, "api_key": "k"}
    with ScriptedChatServer(vandal) as server:
        summary, episodes = run("llm", tmp_path / "vandal", tasks=[FAST[0]], max_steps=3,
                                options=options | {"base_url": server.base_url})  # fmt: skip
    [e] = episodes
    assert summary["failed"] == [] and summary["played"] == 1
    assert e["reward"] == 0.0 and e["stop"] == "env_error" and "container" in e["env_error"]


def test_killed_run_resumes_without_duplicates_or_losses(tmp_path):
    out = tmp_path / "killed"
    cmd = [
        sys.executable,
        "-m",
        "cligym_env.cli",
        "run",
        "--agent",
        "noop",
        "--k",
        "3",
        "--out",
        str(out),
        "--json",
    ]
    for t in FAST[:2]:
        cmd += ["--tasks", t]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    path = out / "trajectories.jsonl"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(read_trajectories(path)) < 2:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = read_trajectories(path)
    assert 2 <= len(before) < 6
    killed_process = json.loads((out / "run.json").read_text())["processes"][0]
    summary, episodes = run("noop", out, tasks=FAST[:2], k=3)
    keys = [(e["task_id"], e["sample"]) for e in episodes]
    assert len(keys) == len(set(keys)) == 6 and summary["skipped"] == len(before)
    assert sorted(e["seed"] for e in episodes) == [0, 0, 1, 1, 2, 2]
    leftovers = containers.docker_client().containers.list(
        all=True, filters={"label": f"{containers.PROCESS_LABEL}={killed_process}"}, sparse=True
    )  # sparse: no inspect per container, so one being removed right now cannot raise 404
    assert leftovers == []


def test_splits_are_stable_and_both_non_empty():
    golds = ["click", "h11", "jinja2", "markupsafe", "python-slugify", "tabulate", "toolz"]
    assignment = splits_of(golds)
    assert set(assignment.values()) == {"train", "test"}
    assert assignment == splits_of(list(reversed(golds)))
    assert split_of("markupsafe") == "test" and split_of("click") == "train"
    assert splits_of(["click", "tabulate"]) == {
        "click": "train",
        "tabulate": "test",
    }  # fallback: smallest hash
    sample = [str(p) for p in sampled_tasks(48)]  # task folders: select_tasks takes folders of tasks or tasks
    test = select_tasks(sample, split="test")
    train = select_tasks(sample, split="train")
    assert test and train and not {t.spec.gold for t in test} & {t.spec.gold for t in train}
    with pytest.raises(CligymError, match="no task folders"):
        select_tasks([str(GENERATED / "nope")])
