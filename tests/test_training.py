"""SFT with TRL on the tiny offline model, and the `hf:` agent playing a real Repair-v0 episode."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl", reason="the `train` extra is not installed")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from agents.prompt import format_reply, initial_messages, observation_message, submit_reply  # noqa: E402
from training import sft  # noqa: E402
from training.tiny_model import build_tiny_checkpoint  # noqa: E402

torch.set_num_threads(2)  # the machine is shared
ROOT = Path(__file__).resolve().parent.parent
TASK = ROOT / "tasks" / "generated" / "python-slugify-missing-dependency"


def conversation(i: int) -> list[dict[str, str]]:
    """A repair episode in the exact form rollouts record: system, task, replies and observations."""
    module = ["text_unidecode", "yaml", "requests"][i % 3]
    messages = initial_messages(
        f"Running the tests fails with ModuleNotFoundError: No module named '{module}'."
    )
    messages += [
        {
            "role": "assistant",
            "content": format_reply("See what is installed.", "pip list 2>/dev/null | head"),
        },
        {"role": "user", "content": observation_message("Package  Version\npip      24.0\n", 0)},
        {
            "role": "assistant",
            "content": format_reply(f"{module} is missing; install it.", f"pip install {module}"),
        },
        {"role": "user", "content": observation_message(f"Successfully installed {module}\n", 0)},
        {"role": "assistant", "content": submit_reply()},
    ]
    return messages


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "conversations.jsonl"
    rows = [{"task_id": f"t{i}", "reward": 1.0, "messages": conversation(i)} for i in range(12)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture(scope="module")
def tiny(data, tmp_path_factory) -> Path:
    return build_tiny_checkpoint(sft.load_conversations(data), tmp_path_factory.mktemp("tiny"))


def run_sft(tiny: Path, out: Path, *extra: str) -> dict:
    argv = ["--config", str(ROOT / "training/configs/tiny-cpu.yaml"), "--model_name_or_path", str(tiny)]
    return sft.main(
        [*argv, "--output_dir", str(out), "--logging_steps", "1", "--disable_tqdm", "true", *extra]
    )


def test_tiny_checkpoint_loads_offline(tiny) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny), AutoTokenizer.from_pretrained(tiny)
    assert model.config.model_type == "qwen3" and 1e5 < model.num_parameters() < 5e6
    assert "{% generation %}" in tokenizer.chat_template.replace("{%-", "{%")
    assert tokenizer.eos_token == "<|im_end|>" and tokenizer.pad_token == "<|endoftext|>"
    assert tokenizer.convert_tokens_to_ids("<|im_start|>") != tokenizer.unk_token_id
    prompt = tokenizer.apply_chat_template(conversation(0)[:2], add_generation_prompt=True, tokenize=False)
    assert prompt.startswith("<|im_start|>system\n") and prompt.endswith("<|im_start|>assistant\n")


def test_assistant_mask_is_exactly_the_replies(tiny, data, tmp_path) -> None:
    """Every assistant reply and its <|im_end|>\\n are in the loss, nothing else: in the mask the template
    gives, and in the labels TRL builds from it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    messages = conversation(1)

    def n_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    def render(turns):
        return tokenizer.apply_chat_template(turns, tokenize=False)

    expected = []
    for k, message in enumerate(messages):
        if message["role"] == "assistant":
            start = n_tokens(render(messages[:k]) + "<|im_start|>assistant\n")
            expected.append((start, n_tokens(render(messages[: k + 1]))))
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, mask = out["input_ids"], out["assistant_masks"]
    assert sft._assistant_spans(mask) == expected and len(expected) == 3
    for (a, b), reply in zip(
        expected, [m["content"] for m in messages if m["role"] == "assistant"], strict=True
    ):
        assert tokenizer.decode(ids[a:b]) == reply + "<|im_end|>\n"

    args = SFTConfig(
        output_dir=str(tmp_path), assistant_only_loss=True, bf16=False, gradient_checkpointing=False,
        report_to="none", max_length=None,
    )  # fmt: skip
    dataset = sft.load_messages_dataset(data).select([1])
    trainer = SFTTrainer(
        AutoModelForCausalLM.from_pretrained(tiny), args, train_dataset=dataset, processing_class=tokenizer
    )
    labels = trainer.train_dataset[0]["labels"]
    assert trainer.train_dataset[0]["input_ids"] == ids
    assert [i for i, label in enumerate(labels) if label != -100] == [
        i for a, b in expected for i in range(a, b)
    ]


def test_truncation_that_cuts_replies_warns(tiny, data, caplog) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    dataset = sft.load_messages_dataset(data)
    spans = [
        sft._assistant_spans(
            tokenizer.apply_chat_template(m, return_dict=True, return_assistant_tokens_mask=True)[
                "assistant_masks"
            ]
        )
        for m in dataset["messages"]
    ]
    limit = sum(spans[0][1]) // 2  # the middle of the second reply of the first conversation
    cut = sum(1 for s in spans for a, b in s if a < limit < b)
    dropped = sum(1 for s in spans for a, _ in s if a >= limit)
    with caplog.at_level(logging.WARNING, logger="training.sft"):
        sft.check_assistant_masks(dataset, tokenizer, max_length=10_000, name="long")
        assert "cuts" not in caplog.text
        sft.check_assistant_masks(dataset, tokenizer, max_length=limit, name="short")
    assert cut and dropped
    assert (
        f"max_length={limit} cuts {cut} assistant spans and drops {dropped} in 12 conversations"
        in caplog.text
    )


def test_no_assistant_turns_is_one_clear_error(tiny, tmp_path) -> None:
    path = tmp_path / "no-replies.jsonl"
    path.write_text(json.dumps({"messages": conversation(0)[:2]}) + "\n")
    with pytest.raises(SystemExit, match="none of its 1 conversations has an assistant turn"):
        run_sft(tiny, tmp_path / "out", "--dataset", str(path))


def test_missing_messages_column_and_bad_stage_are_clear_errors(tiny, tmp_path) -> None:
    path = tmp_path / "text.jsonl"
    path.write_text(json.dumps({"text": "hello"}) + "\n")
    with pytest.raises(SystemExit, match="needs a `messages` list"):
        run_sft(tiny, tmp_path / "out", "--dataset", str(path))
    with pytest.raises(SystemExit, match="nothing to train on"):
        run_sft(tiny, tmp_path / "out")


def play_one_episode(checkpoint: Path) -> None:
    """The hf: agent plays Repair-v0 for 2 steps in a real container: the episode ends, scored, and its
    container is gone after close."""
    import docker.errors
    import gymnasium as gym

    import cligym_env  # noqa: F401  (registers the environments)
    from agents.registry import make_policy
    from cligym_env.runtime.containers import docker_client

    policy = make_policy(f"hf:{checkpoint}", max_tokens=48, seed=0)
    assert policy.name == f"hf:{checkpoint}"
    env = gym.make("cligym/Repair-v0", task=str(TASK), max_steps=2)
    try:
        observation, _ = env.reset(seed=0)
        container_id = env.unwrapped._session.container.id
        messages = initial_messages(observation)
        for _ in range(2):
            action = policy.act(messages)
            assert action.command and action.usage["completion_tokens"] <= 48
            messages.append({"role": "assistant", "content": action.message})
            output, reward, terminated, truncated, info = env.step(action.command)
            if terminated or truncated:
                break
            messages.append({"role": "user", "content": observation_message(output, info.get("exit_code"))})
        assert terminated or truncated
        assert reward in (0.0, 1.0)
    finally:
        env.close()
    with pytest.raises(docker.errors.NotFound):
        docker_client().containers.get(container_id)


@pytest.mark.slow
def test_two_stage_full_finetune_lowers_loss_and_plays(tiny, data, tmp_path) -> None:
    stages = [
        {"name": "general", "dataset": str(data), "num_train_epochs": 1},
        {"name": "cligym", "dataset": str(data)},
    ]
    result = run_sft(tiny, tmp_path / "full", "--stages", json.dumps(stages), "--num_train_epochs", "3")
    first, second = result["stages"]
    assert (first["name"], len(first["losses"]), len(second["losses"])) == ("general", 6, 18)
    assert (Path(first["output_dir"]) / "model.safetensors").exists()
    losses = first["losses"] + second["losses"]
    assert sum(losses[-3:]) / 3 < 0.7 * sum(losses[:3]) / 3, losses
    assert (tmp_path / "full" / "model.safetensors").exists() and (
        tmp_path / "full" / "chat_template.jinja"
    ).exists()
    play_one_episode(tmp_path / "full")


@pytest.mark.slow
def test_lora_finetune_saves_an_adapter_that_plays(tiny, data, tmp_path) -> None:
    result = run_sft(
        tiny, tmp_path / "lora", "--dataset", str(data), "--use_peft", "--lora_r", "8", "--lora_alpha", "16",
        "--lora_target_modules", "all-linear", "--num_train_epochs", "2",
    )  # fmt: skip
    losses = result["stages"][0]["losses"]
    assert losses[-1] < losses[0], losses
    adapter = tmp_path / "lora"
    assert (adapter / "adapter_config.json").exists() and not (adapter / "model.safetensors").exists()
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny)
    play_one_episode(adapter)


@pytest.mark.slow
def test_gpu_check_script_runs_on_cpu(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(ROOT / "training/gpu_check.sh"), "--allow-cpu", "--steps", "6", "--out", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=240, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "device: cpu" in proc.stdout and "gpu check: OK" in proc.stdout


def test_stock_qwen3_template_is_swapped_for_the_marked_one(tiny) -> None:
    """A real Qwen3 checkpoint's template has no generation markers: `auto` picks training/templates/qwen3.jinja,
    whose masks hold the (empty) think block, the reply and <|im_end|>."""
    import trl
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny)
    tokenizer.chat_template = (Path(trl.__file__).parent / "chat_templates" / "qwen3.jinja").read_text()
    tokenizer.chat_template = sft.resolve_chat_template(tokenizer, "auto")
    assert tokenizer.chat_template == (ROOT / "training/templates/qwen3.jinja").read_text()
    messages = conversation(2)
    report = sft.audit_example(messages, tokenizer, max_length=None)
    assert report["matched"] and report["turns"] == report["spans"] == 3
    out = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    a, b = sft._assistant_spans(out["assistant_masks"])[0]
    assert (
        tokenizer.decode(out["input_ids"][a:b])
        == "<think>\n\n</think>\n\n" + messages[2]["content"] + "<|im_end|>\n"
    )
    with pytest.raises(sft.TrainingDataError, match="not ChatML"):
        tokenizer.chat_template = "{% for m in messages %}{{ m.content }}{% endfor %}"
        sft.resolve_chat_template(tokenizer, "auto")
