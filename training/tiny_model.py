"""A small Qwen3-architecture model and a byte-level BPE tokenizer, built offline, for tests and CPU runs.

The tokenizer is trained with `tokenizers` on the conversations it will see (plus the agent's system prompt),
the model is randomly initialised, and both are saved as an ordinary Hugging Face checkpoint that
`AutoModelForCausalLM` / `AutoTokenizer` load with no network.

    python -m training.tiny_model --data runs/export --out checkpoints/tiny
    python -m training.sft --config training/configs/tiny-cpu.yaml --model_name_or_path checkpoints/tiny ...
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agents.prompt import SYSTEM_PROMPT

TEMPLATES = Path(__file__).resolve().parent / "templates"
CHATML_TEMPLATE = (TEMPLATES / "chatml.jinja").read_text()
PAD, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"


@dataclass
class TinyModelSpec:
    """The size of the model; the defaults give ~0.4M parameters, enough to learn the reply format on a CPU."""

    vocab_size: int = 2048
    """Target BPE vocabulary size (the result can be smaller on a small corpus)."""
    hidden_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    intermediate_size: int = 256
    max_position_embeddings: int = 8192
    """Longest context the model accepts (RoPE, so no parameters depend on it)."""
    seed: int = 0


def conversation_texts(conversations: Iterable[list[dict[str, str]]]) -> Iterator[str]:
    """The strings a tokenizer should learn from: the system prompt, then every message's role and content."""
    yield SYSTEM_PROMPT
    for messages in conversations:
        for message in messages:
            yield f"{message['role']}\n{message['content']}"


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048):
    """A byte-level BPE tokenizer (any text encodes, nothing is unknown) with ChatML special tokens and our
    generation-marked ChatML template; eos is `<|im_end|>` so generation stops at the end of a turn."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        eos_token=IM_END,
        pad_token=PAD,
        additional_special_tokens=[IM_START],
        chat_template=CHATML_TEMPLATE,
        model_max_length=TinyModelSpec.max_position_embeddings,
    )


def build_model(tokenizer, spec: TinyModelSpec):
    """A randomly initialised Qwen3ForCausalLM sized by `spec`, its token ids matched to `tokenizer`."""
    import torch
    from transformers import GenerationConfig, Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(spec.seed)
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_hidden_layers,
        num_attention_heads=spec.num_attention_heads,
        num_key_value_heads=spec.num_key_value_heads,
        head_dim=spec.hidden_size // spec.num_attention_heads,
        max_position_embeddings=spec.max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=None,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Qwen3ForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[tokenizer.eos_token_id, tokenizer.pad_token_id], pad_token_id=tokenizer.pad_token_id
    )
    return model


def build_tiny_checkpoint(conversations: Iterable[list[dict[str, str]]], out: str | Path, spec=None) -> Path:
    """Train the tokenizer on `conversations`, build the model, save both to `out`; returns `out`.

    >>> build_tiny_checkpoint([[{"role": "user", "content": "hi"}]], "/tmp/tiny")  # doctest: +SKIP
    """
    spec = spec or TinyModelSpec()
    tokenizer = train_tokenizer(conversation_texts(conversations), spec.vocab_size)
    tokenizer.model_max_length = spec.max_position_embeddings
    model = build_model(tokenizer, spec)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> None:
    from training.sft import load_conversations

    defaults = TinyModelSpec()
    parser = argparse.ArgumentParser(
        prog="python -m training.tiny_model", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--data", required=True, help="a `cligym export` folder, or a JSONL file with `messages`"
    )
    parser.add_argument("--out", required=True, help="where to save the checkpoint (model + tokenizer)")
    for name, value in vars(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, default=value)
    args = parser.parse_args(argv)
    spec = TinyModelSpec(**{name: getattr(args, name) for name in vars(defaults)})
    out = build_tiny_checkpoint(load_conversations(args.data), args.out, spec)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model, tokenizer = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
    print(f"tiny Qwen3 model: {model.num_parameters():,} parameters, vocab {len(tokenizer)}, saved to {out}")


if __name__ == "__main__":
    main()
