"""Supervised fine-tuning on agent trajectories with TRL's `SFTTrainer`, in one or more stages.

The data is what `cligym export` writes: a Hugging Face dataset folder (`save_to_disk`) or a JSONL file, with a
`messages` column of {role, content} turns. The loss is on assistant tokens only: the chat template marks
assistant replies with `{% generation %}`, and before training every conversation is checked — each assistant
turn must be one masked span holding that reply, and a warning says how many spans `max_length` cuts.

A run is a list of stages (the paper's recipe: general SWE trajectories for 1 epoch, then CLI-Gym's for 15);
each stage starts from the checkpoint the previous one saved. Configure with a YAML file, the command line, or
both (the command line wins); every `SFTConfig` / `ModelConfig` field is accepted:

    python -m training.sft --config training/configs/tiny-cpu.yaml --model_name_or_path ckpt/tiny \\
        --dataset runs/export --output_dir ckpt/tiny-sft
    accelerate launch --config_file training/configs/accelerate/zero3.yaml \\
        -m training.sft --config training/configs/qwen3-32b-cligym.yaml
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cligym_env.errors import CligymError

logger = logging.getLogger("training.sft")
TEMPLATES = Path(__file__).resolve().parent / "templates"
STAGE_KEYS = {"name", "dataset", "split"}


class TrainingDataError(CligymError):
    """A training dataset or chat template cannot give a correct assistant-only loss."""


@dataclass
class CligymSFTArguments:
    """What to train on, and the few things TRL's `SFTConfig` / `ModelConfig` do not cover."""

    dataset: str | None = field(
        default=None,
        metadata={"help": "A `cligym export` folder or a JSONL file (one stage); or use `stages`."},
    )
    stages: str | None = field(  # a list when it comes from YAML (argparse leaves non-string defaults alone)
        default=None,
        metadata={
            "help": "Stages run in order, each a mapping with `dataset` (and optional `name`, `split`) plus any "
            "SFTConfig field to override (num_train_epochs, learning_rate, ...). A YAML list, or JSON on the CLI."
        },
    )
    chat_template: str = field(
        default="auto",
        metadata={
            "help": "`auto` (keep a template with generation markers, else use ours: `qwen3` for templates "
            "with <think>, `chatml` for other ChatML ones), `chatml`, `qwen3`, or a path to a .jinja file."
        },
    )
    global_batch_size: int | None = field(
        default=None,
        metadata={
            "help": "If set, gradient_accumulation_steps = this / (per_device_train_batch_size x GPUs)."
        },
    )
    max_samples: int | None = field(default=None, metadata={"help": "Use only the first N conversations."})
    cpu_threads: int | None = field(default=None, metadata={"help": "torch threads when there is no CUDA."})

    def stage_list(self) -> list[dict[str, Any]]:
        """The stages as dicts, each with `name`, `dataset` and `split`."""
        stages = json.loads(self.stages) if isinstance(self.stages, str) else self.stages
        if not stages:
            if not self.dataset:
                raise TrainingDataError("nothing to train on: give --dataset PATH or a `stages` list")
            stages = [{"dataset": self.dataset}]
        out = []
        for i, stage in enumerate(stages, 1):
            if not isinstance(stage, dict) or "dataset" not in stage:
                raise TrainingDataError(f"stage {i}: expected a mapping with a `dataset` key, got {stage!r}")
            out.append({"name": f"stage{i}", "split": "train", **stage})
        return out


# --- data ------------------------------------------------------------------------------------------------


def _normalize(messages: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [{"role": str(m["role"]), "content": str(m.get("content") or "")} for m in messages]


def load_messages_dataset(source: str | Path, split: str = "train"):
    """A `datasets.Dataset` with one column, `messages`, from a `save_to_disk` folder, a JSONL file, a folder of
    JSONL files, or (when online) a Hub dataset name."""
    from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

    path = Path(source)
    jsonl = (
        sorted(path.glob("*.jsonl"))
        if path.is_dir()
        else [path]
        if path.suffix in (".jsonl", ".json")
        else []
    )
    if path.is_dir() and any(
        (path / f).exists() for f in ("dataset_info.json", "dataset_dict.json", "state.json")
    ):
        dataset = load_from_disk(str(path))
        if isinstance(dataset, DatasetDict):
            if split not in dataset:
                raise TrainingDataError(f"dataset {path}: no split {split!r} (splits: {', '.join(dataset)})")
            dataset = dataset[split]
    elif jsonl and all(p.is_file() for p in jsonl):
        rows = [json.loads(line) for p in jsonl for line in p.read_text().splitlines() if line.strip()]
        if rows and any("messages" not in row for row in rows):
            raise TrainingDataError(f"dataset {path}: every JSON line needs a `messages` list")
        dataset = Dataset.from_list([{"messages": _normalize(row["messages"])} for row in rows])
    elif not path.exists():
        try:
            dataset = load_dataset(str(source), split=split)
        except Exception as e:  # offline, or no such dataset: say both
            raise TrainingDataError(
                f"dataset {source}: no such file or folder, and not loadable by name ({e})"
            ) from e
    else:
        raise TrainingDataError(f"dataset {path}: expected a `save_to_disk` folder or JSONL file(s)")
    if "messages" not in dataset.column_names:
        raise TrainingDataError(
            f"dataset {source}: no `messages` column (columns: {', '.join(dataset.column_names)}); "
            "make one with `cligym export`"
        )
    return dataset.select_columns(["messages"])


def load_conversations(source: str | Path, split: str = "train") -> list[list[dict[str, str]]]:
    """The conversations of a dataset as plain lists of {role, content} dicts."""
    return [_normalize(m) for m in load_messages_dataset(source, split)["messages"]]


def resolve_chat_template(tokenizer, choice: str = "auto") -> str:
    """The chat template to train (and later generate) with: one that has `{% generation %}` markers."""
    current = tokenizer.chat_template or ""
    if choice == "auto":
        if "{% generation %}" in current or "{%- generation %}" in current:
            return current
        if "<|im_start|>" not in current and current:
            raise TrainingDataError(
                "the tokenizer's chat template has no {% generation %} markers and is not ChatML; "
                "pass --chat_template PATH.jinja with markers around assistant replies"
            )
        choice = "qwen3" if "<think>" in current else "chatml"
    path = TEMPLATES / f"{choice}.jinja" if (TEMPLATES / f"{choice}.jinja").exists() else Path(choice)
    if not path.is_file():
        raise TrainingDataError(f"chat template {choice!r}: not `auto`, `chatml`, `qwen3` or a .jinja file")
    return path.read_text()


def _assistant_spans(mask: list[int]) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, bit in enumerate([*mask, 0]):
        if bit and start is None:
            start = i
        elif not bit and start is not None:
            spans.append((start, i))
            start = None
    return spans


def audit_example(messages: list[dict[str, str]], tokenizer, max_length: int | None) -> dict[str, Any]:
    """Tokenize one conversation with its assistant mask and report: turns, masked spans, whether every span
    holds its reply, spans `max_length` cuts and ones it drops whole, and the token count."""
    out = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    ids, spans = out["input_ids"], _assistant_spans(out["assistant_masks"])
    replies = [m["content"].strip() for m in messages if m["role"] == "assistant"]
    matched = len(spans) == len(replies) and all(
        reply in tokenizer.decode(ids[a:b]) for reply, (a, b) in zip(replies, spans, strict=True)
    )
    limit = max_length if max_length is not None else len(ids)
    cut = sum(1 for start, end in spans if start < limit < end)
    lost = sum(1 for start, _ in spans if start >= limit)
    return {
        "turns": len(replies),
        "spans": len(spans),
        "matched": matched,
        "cut": cut,
        "lost": lost,
        "tokens": len(ids),
    }


def check_assistant_masks(dataset, tokenizer, max_length: int | None, name: str, num_proc: int | None = None):
    """Check the assistant mask of every conversation; drop ones with no assistant turn; return the dataset.

    Raises TrainingDataError when no conversation has an assistant turn, or when a mask misses or splits a
    reply (a template whose markers are wrong); warns when `max_length` cuts assistant spans.
    """
    report = dataset.map(
        lambda ex: audit_example(ex["messages"], tokenizer, max_length),
        remove_columns=dataset.column_names,
        num_proc=num_proc,
        desc=f"Checking assistant masks ({name})",
    )
    turns = report["turns"]
    if not any(turns):
        raise TrainingDataError(
            f"dataset {name}: none of its {len(turns)} conversations has an assistant turn, so an assistant-only "
            "loss has nothing to learn; export trajectories that contain the agent's replies"
        )
    bad = [i for i, (t, ok) in enumerate(zip(turns, report["matched"], strict=True)) if t and not ok]
    if bad:
        example = audit_example(dataset[bad[0]]["messages"], tokenizer, max_length)
        raise TrainingDataError(
            f"dataset {name}: in {len(bad)} conversations (first: #{bad[0]}, {example['turns']} assistant turns, "
            f"{example['spans']} masked spans) the assistant mask does not match the replies; check the "
            "{% generation %} markers of the chat template"
        )
    tokens, hit = (
        report["tokens"],
        sum(1 for c, lost in zip(report["cut"], report["lost"], strict=True) if c or lost),
    )
    if hit:
        logger.warning(
            "dataset %s: max_length=%s cuts %d assistant spans and drops %d in %d conversations (longest %d "
            "tokens); what is cut off is not trained on",
            name, max_length, sum(report["cut"]), sum(report["lost"]), hit, max(tokens),
        )  # fmt: skip
    empty = sum(1 for t in turns if not t)
    if empty:
        logger.warning("dataset %s: dropping %d conversations with no assistant turn", name, empty)
        dataset = dataset.select([i for i, t in enumerate(turns) if t])
    logger.info(
        "dataset %s: %d conversations, %d assistant turns, tokens mean %.0f max %d",
        name, len(dataset), sum(turns), sum(tokens) / len(tokens), max(tokens),
    )  # fmt: skip
    return dataset


# --- model -----------------------------------------------------------------------------------------------


def load_model_and_tokenizer(path: str, model_args, chat_template: str):
    """A full checkpoint, or a LoRA adapter folder (adapter_config.json) on its base, as a trainable model."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    dtype = model_args.dtype if model_args.dtype in (None, "auto") else getattr(torch, model_args.dtype)
    kwargs = {"dtype": dtype, "attn_implementation": model_args.attn_implementation}
    if (Path(path) / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(path, is_trainable=True, **kwargs)
    else:
        model = AutoModelForCausalLM.from_pretrained(path, revision=model_args.model_revision, **kwargs)
    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.chat_template = resolve_chat_template(tokenizer, chat_template)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


# --- training --------------------------------------------------------------------------------------------


def stage_config(training_args, stage: dict[str, Any], output_dir: str):
    """The SFTConfig of one stage: the run's, with the stage's overrides and its own output folder."""
    overrides = {k: v for k, v in stage.items() if k not in STAGE_KEYS}
    unknown = set(overrides) - {f.name for f in dataclasses.fields(training_args)}
    if unknown:
        raise TrainingDataError(f"stage {stage['name']}: unknown SFTConfig fields {sorted(unknown)}")
    return dataclasses.replace(training_args, output_dir=output_dir, **overrides)


def train(script_args: CligymSFTArguments, training_args, model_args) -> dict[str, Any]:
    """Run every stage; returns {"output_dir", "stages": [{"name", "losses", "output_dir"}]}."""
    from trl import SFTTrainer, get_peft_config

    stages = script_args.stage_list()
    source, final_dir, results = model_args.model_name_or_path, training_args.output_dir, []
    for i, stage in enumerate(stages, 1):
        last = i == len(stages)
        out = final_dir if last else os.path.join(final_dir, "stages", f"{i}-{stage['name']}")
        args = stage_config(training_args, stage, out)
        model, tokenizer = load_model_and_tokenizer(source, model_args, script_args.chat_template)
        with args.main_process_first(desc=f"dataset {stage['name']}"):
            dataset = load_messages_dataset(stage["dataset"], stage["split"])
            if script_args.max_samples:
                dataset = dataset.select(range(min(script_args.max_samples, len(dataset))))
            if args.assistant_only_loss:
                dataset = check_assistant_masks(
                    dataset, tokenizer, args.max_length, stage["name"], args.dataset_num_proc
                )
        peft_config = get_peft_config(model_args) if i == 1 else None  # later stages load the adapter
        if peft_config is not None and set(peft_config.target_modules or ()) == {"all-linear"}:
            peft_config.target_modules = "all-linear"  # the CLI gives a list; peft wants the bare string
        trainer = SFTTrainer(
            model=model, args=args, train_dataset=dataset, processing_class=tokenizer, peft_config=peft_config
        )
        logger.info(
            "stage %d/%d %s: %d conversations -> %s", i, len(stages), stage["name"], len(dataset), out
        )
        trainer.train()
        trainer.save_model(out)
        if trainer.is_world_process_zero():
            tokenizer.save_pretrained(out)
        losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
        results.append({"name": stage["name"], "losses": losses, "output_dir": out})
        source = out
        del trainer, model
    return {"output_dir": final_dir, "stages": results}


def apply_device_defaults(training_args, script_args: CligymSFTArguments) -> None:
    """No CUDA: fp32 and no gradient checkpointing (bf16 errors or crawls on CPU, checkpointing only costs
    time on small models). `global_batch_size` sets the gradient accumulation for the GPUs present."""
    import torch

    if not torch.cuda.is_available():
        if training_args.bf16 or training_args.gradient_checkpointing:
            logger.info("no CUDA: training in fp32 without gradient checkpointing")
        training_args.bf16 = training_args.fp16 = training_args.gradient_checkpointing = False
        if hasattr(training_args, "activation_checkpointing"):  # transformers >= 5.19 name, mirrored on copy
            training_args.activation_checkpointing = False
        if script_args.cpu_threads:
            torch.set_num_threads(script_args.cpu_threads)
    if script_args.global_batch_size:
        per_step = training_args.per_device_train_batch_size * training_args.world_size
        if script_args.global_batch_size % per_step:
            raise TrainingDataError(
                f"global_batch_size {script_args.global_batch_size} is not a multiple of "
                f"per_device_train_batch_size x processes = {per_step}"
            )
        training_args.gradient_accumulation_steps = script_args.global_batch_size // per_step


def parse_args(argv: list[str] | None = None):
    """(CligymSFTArguments, SFTConfig, ModelConfig) from `--config YAML` and the command line."""
    import torch
    from trl import ModelConfig, SFTConfig, TrlParser

    parser = TrlParser((CligymSFTArguments, SFTConfig, ModelConfig))
    if not torch.cuda.is_available():  # before parsing: SFTConfig's bf16 default is refused on some CPUs
        renamed = "activation_checkpointing" in {
            f.name for f in dataclasses.fields(SFTConfig)
        }  # transformers>=5.19
        parser.set_defaults(
            bf16=False, **{"activation_checkpointing" if renamed else "gradient_checkpointing": False}
        )
    script_args, training_args, model_args = parser.parse_args_and_config(argv)
    if not model_args.model_name_or_path:
        raise TrainingDataError("give --model_name_or_path (a checkpoint folder, or a Hub name when online)")
    apply_device_defaults(training_args, script_args)
    return script_args, training_args, model_args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Parse, train every stage, write `sft_result.json` (losses, device, precision) next to the model."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    try:
        script_args, training_args, model_args = parse_args(argv)
        result = train(script_args, training_args, model_args)
    except TrainingDataError as e:
        raise SystemExit(f"error: {e}") from None
    precision = "bf16" if training_args.bf16 else "fp16" if training_args.fp16 else "fp32"
    result.update(device=str(training_args.device), precision=precision)
    if training_args.process_index == 0:
        Path(result["output_dir"], "sft_result.json").write_text(json.dumps(result, indent=2))
    for stage in result["stages"]:
        losses = stage["losses"]
        if losses:
            logger.info(
                "stage %s: loss %.4f -> %.4f over %d logs", stage["name"], losses[0], losses[-1], len(losses)
            )
    logger.info("saved %s", result["output_dir"])
    return result


if __name__ == "__main__":
    main()
