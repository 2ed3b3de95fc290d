"""Policies: the heuristic's diagnosis, the llm agent against a real HTTP server, the registry."""

from __future__ import annotations

import json

import pytest
from llm_server import ScriptedChatServer, turns

from agents.heuristic import PROBE_DPKG, PROBE_PYTHON, HeuristicPolicy, suite_passed
from agents.llm import ELIDED, FORMAT_ERROR, TOOL_FORMAT_ERROR, TRUNCATED, LLMPolicy, fit_context
from agents.prompt import format_reply, initial_messages, observation_message, parse_command
from agents.protocol import Policy, PolicyError
from agents.registry import make_policy
from cligym_env.errors import CligymError
from cligym_env.task import load_task

TEST_COMMAND = "python -m pytest -q --junitxml=/tmp/r.xml tests"


def play(policy, observations: list[str]) -> list[str]:
    """Feed `observations` as the outputs of the policy's commands; return the commands it chose."""
    messages = initial_messages("The tests fail.")
    commands = []
    for output in observations:
        action = policy.act(messages)
        commands.append(action.command)
        messages += [{"role": "assistant", "content": action.message}, {"role": "user", "content": output}]
    commands.append(policy.act(messages).command)
    return commands


def test_heuristic_installs_missing_module_then_submits():
    policy = HeuristicPolicy(TEST_COMMAND)
    failing = "[exit code 1]\nE   ModuleNotFoundError: No module named 'yaml'\n1 failed in 0.1s\n"
    commands = play(policy, [failing, "[exit code 0]\n", "[exit code 0]\n12 passed in 0.2s\n"])
    assert commands[0] == TEST_COMMAND + " -x --tb=short -rs"
    assert "pip install PyYAML" in commands[1]
    assert commands[2] == commands[0] and commands[3] == "submit"


def test_heuristic_restores_exec_bit_and_reinstalls_deleted_files():
    policy = HeuristicPolicy(TEST_COMMAND)
    denied = "[exit code 126]\nbash: /opt/venv/bin/python: Permission denied\n"
    commands = play(policy, [denied])
    assert "chmod a+rx" in commands[1] and "readlink -f /opt/venv/bin/python" in commands[1]
    # a failure that names nothing: probes, then the repair a probe points at
    vague = "[exit code 1]\nassert 'a' == 'b'\n1 failed in 0.1s\n"
    commands = play(policy, [vague, "[exit code 0]\n", "[exit code 0]\nmissing     /usr/bin/less\n"])
    assert commands[1] == PROBE_PYTHON and commands[2] == PROBE_DPKG
    assert "dpkg -S /usr/bin/less" in commands[3] and "apt-get install --reinstall" in commands[3]


def test_heuristic_gives_up_after_its_budget_and_is_deterministic():
    policy = HeuristicPolicy(TEST_COMMAND, max_repairs=2)
    failing = "[exit code 1]\nNo module named 'a1'\nNo module named 'a2'\nNo module named 'a3'\n1 failed\n"
    commands = play(policy, [failing] * 6)
    assert commands == play(HeuristicPolicy(TEST_COMMAND, max_repairs=2), [failing] * 6)
    assert commands[-1] == "submit" and sum("pip" in c for c in commands) == 2


def test_tests_passed_reads_pytest_summaries():
    assert suite_passed("[exit code 0]\n30 passed in 1s\n")
    assert not suite_passed("[exit code 1]\n1 failed, 29 passed in 1s\n")
    assert not suite_passed("SKIPPED [1] tests/t.py:3: speedups unavailable\n3 passed, 1 skipped\n")


def test_fit_context_elides_old_observations_only():
    messages = initial_messages("task")
    for i in range(10):
        messages += [
            {"role": "assistant", "content": f"```bash\necho {i}\n```"},
            {"role": "user", "content": "x" * 4000},
        ]
    fitted = fit_context(messages, budget=5000, keep_last_turns=3)
    assert fitted[:2] == messages[:2] and len(fitted) == len(messages)
    assert fitted[3]["content"] == ELIDED and all(m["content"] == "x" * 4000 for m in fitted[-5::2])
    assert messages[3]["content"] == "x" * 4000  # the caller's conversation is untouched


def test_llm_retries_format_errors_and_server_errors_and_counts_tokens():
    script = {1: "Let me think about it.", 2: 429, 3: 500, 4: format_reply("List files.", "ls -la")}

    def reply(messages, number):
        if number == 2:
            assert messages[-1]["content"] == FORMAT_ERROR
        return script.get(number, 500)

    with ScriptedChatServer(reply) as server:
        policy = LLMPolicy(model="scripted", base_url=server.base_url, backoff_seconds=0.01, api_retries=2)
        action = policy.act(initial_messages("The tests fail."))
        assert action.command == "ls -la" and action.usage["format_errors"] == 1
        assert action.usage["prompt_tokens"] > 0 and action.usage["requests"] == 2
        with pytest.raises(PolicyError, match="failed 3 times"):
            policy.act(initial_messages("The tests fail."))
        assert server.requests == 4 + 3


def test_llm_gives_up_on_replies_without_commands_and_on_a_dead_endpoint():
    with ScriptedChatServer(lambda messages, n: "no code block here") as server:
        policy = LLMPolicy(model="m", base_url=server.base_url, format_retries=1)
        with pytest.raises(PolicyError, match="2 replies in a row without a command"):
            policy.act(initial_messages("x"))
    dead = LLMPolicy(
        model="m", base_url=server.base_url, api_retries=1, backoff_seconds=0.01, timeout_seconds=2
    )
    with pytest.raises(PolicyError, match="APIConnectionError"):
        dead.act(initial_messages("x"))


def test_llm_runs_no_command_from_thinking_or_a_cut_off_reply_and_retries_malformed_bodies():
    cut = "<think>The module is gone, so maybe\n```bash\nrm -rf /opt/venv\n```\nno wait, first"
    script = {
        1: {"raw": "<html>502 Bad Gateway</html>"},  # a proxy's page with status 200: not JSON
        2: {
            "raw": json.dumps(
                {"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}
            )
        },
        3: {"content": cut, "finish_reason": "length"},
        4: "<think>\n```bash\nrm -rf /\n```\n</think>\nCheck the imports.\n```bash\npip check\n```",
    }
    seen = []

    def reply(messages, number):
        seen.append(messages[-1]["content"])
        return script[number]

    with ScriptedChatServer(reply) as server:
        policy = LLMPolicy(model="m", base_url=server.base_url, backoff_seconds=0.01, api_retries=2)
        action = policy.act(initial_messages("The tests fail."))
    assert action.command == "pip check"
    assert action.usage["format_errors"] == 1 and action.usage["requests"] == 2  # 2 malformed bodies retried
    assert seen[-1] == TRUNCATED  # the cut-off reply is answered as such, its drafted command never run


def test_llm_native_tool_calls_round_trip_as_vllm_sends_them():
    """vLLM with a tool parser: content null and a `bash` call (reasoning apart), then `submit`. The wire
    conversation pairs each call with a `tool` answer; the trajectory turn is in the text format too."""
    script = {
        1: {"content": None, "reasoning_content": "Maybe a module is missing.",
            "tool_calls": [{"name": "bash", "arguments": json.dumps({"command": "pip check"})}]},
        2: {"content": "No tool this time."},  # a reply without a call: reminded, once
        3: {"content": None, "tool_calls": [{"name": "bash", "arguments": "{not json"}]},  # unusable: reminded
        4: {"content": "Done.", "tool_calls": [{"name": "submit"}]},
    }  # fmt: skip
    with ScriptedChatServer(lambda messages, n: script[n]) as server:
        policy = LLMPolicy(model="m", base_url=server.base_url, tool_calls=True, format_retries=2)
        messages = initial_messages("The tests fail.")
        first = policy.act(messages)
        assert first.command == "pip check" and first.extra["tool_call"]["name"] == "bash"
        assert parse_command(first.message) == "pip check"  # the text format, for SFT
        messages += [{"role": "assistant", "content": first.message, **first.extra},
                     {"role": "user", "content": observation_message("No broken requirements found.", 0)}]  # fmt: skip
        second = policy.act(messages)
    assert second.is_submit and second.usage["format_errors"] == 2 and len(second.retries) == 4
    sent = server.bodies[1]
    assert [t["function"]["name"] for t in sent["tools"]] == ["bash", "submit"]
    call, answer = sent["messages"][2], sent["messages"][3]
    assert call["role"] == "assistant" and call["tool_calls"][0]["function"]["name"] == "bash"
    assert answer == {"role": "tool", "tool_call_id": call["tool_calls"][0]["id"],
                      "content": observation_message("No broken requirements found.", 0)}  # fmt: skip
    assert server.bodies[2]["messages"][-1]["content"] == TOOL_FORMAT_ERROR


def test_llm_sends_the_sampling_knobs_it_is_given():
    with ScriptedChatServer(lambda messages, n: format_reply("Look.", "ls")) as server:
        knobs = {
            "top_p": 0.8,
            "extra_body": {"chat_template_kwargs": {"enable_thinking": False}, "top_k": 20},
        }
        make_policy("llm", model="m", base_url=server.base_url, max_tokens=64, **knobs).act(
            initial_messages("x")
        )
        LLMPolicy(model="m", base_url=server.base_url).act(initial_messages("x"))
    sent, default = server.bodies
    assert sent["top_p"] == 0.8 and sent["max_tokens"] == 64 and sent["top_k"] == 20
    assert sent["chat_template_kwargs"] == {"enable_thinking": False}
    assert "top_p" not in default and "chat_template_kwargs" not in default


@pytest.mark.parametrize(
    ("reply", "command"),
    [
        ("```text\nE   ImportError\n```\nSo:\n```bash\npip install six\n```", "pip install six"),
        ('```bash\nls /usr/lib\n```\nThe output will show:\n```json\n{"a": 1}\n```', "ls /usr/lib"),
        ("```python\nimport os\n```", None),
        ("Run this:\n```\ndpkg --verify\n```", "dpkg --verify"),
        ("````bash\necho '```'\n````", "echo '```'"),
        ("```console\n$ ls -l /tmp\ntotal 0\n```", "ls -l /tmp"),
        ("</think>\n```sh\nwhich python3\n```", "which python3"),
        ("```bash\npip install --force-reinstall", None),  # cut off inside the block
        ("<think>\n```bash\nsubmit\n```", None),
    ],
)
def test_parse_command_pairs_fences_and_skips_thinking_and_other_languages(reply, command):
    assert parse_command(reply) == command


def test_registry_makes_every_builtin_and_rejects_unknown_names():
    task = load_task("tasks/generated/tabulate-wide-chars")
    for spec in ("noop", "oracle", "heuristic"):
        policy = make_policy(spec, task)
        assert isinstance(policy, Policy) and policy.name == spec
    oracle = make_policy("oracle", task)
    first = oracle.act(initial_messages("x"))
    assert first.command == task.solution_script().strip() and parse_command(first.message) == first.command
    assert make_policy("noop").act(initial_messages("x")).is_submit
    assert make_policy("llm", base_url="http://127.0.0.1:9/v1", model="m").config.model == "m"
    with pytest.raises(CligymError, match="unknown agent 'gpt'"):
        make_policy("gpt", task)
    with pytest.raises(CligymError, match="needs the task"):
        make_policy("oracle")


def test_observation_message_format_is_what_the_heuristic_reads():
    assert observation_message("12 passed\n", 0).startswith("[exit code 0]")
    assert suite_passed(observation_message("12 passed in 1s\n", 0))
    assert turns([{"role": "assistant", "content": ""}]) == 1
