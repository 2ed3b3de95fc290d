"""`hf:PATH`: a local Hugging Face checkpoint (a full model, or a LoRA adapter on its base) as a policy.

The conversation is rendered with the checkpoint's own chat template (`add_generation_prompt=True`; a
checkpoint saved by `training/sft.py` carries the template it was trained with), the reply is generated
locally (greedy unless `temperature > 0`), and the command is the reply's last fenced code block.

A reply with no code block is not retried (a local model asked again greedily says the same thing): its first
non-empty line, outside any <think> block, is run as the command, so a model that drops the fences still
acts; an empty reply becomes `submit`, which ends the episode. The reply is kept verbatim as the message.
"""

from __future__ import annotations

import functools
import re
import threading
from pathlib import Path

from agents.prompt import parse_command, visible_text
from agents.protocol import SUBMIT, Action, PolicyError

_FENCE_MARK = re.compile(r"^\s*```\w*|```\s*$")
ELIDED = "[output elided to save context]"


def command_of(reply: str) -> str:
    """The command to run for `reply`: its last fenced block, else its first non-empty line, else `submit`.

    >>> command_of("Look.\\n```bash\\nls\\n```"), command_of("ls -l\\nmore"), command_of("```bash\\n```bash")
    ('ls', 'ls -l', 'submit')
    """
    command = parse_command(reply)
    if command:
        return command
    lines = [_FENCE_MARK.sub("", line).strip() for line in visible_text(reply).splitlines()]
    return next((line for line in lines if line), SUBMIT)


@functools.lru_cache(maxsize=2)
def load_checkpoint(path: str, device: str):
    """(model, tokenizer) for a checkpoint folder, cached: a rollout makes one policy per episode."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = Path(path)
    if not folder.is_dir():
        raise PolicyError(f"hf agent: checkpoint folder {path} does not exist")
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    if (folder / "adapter_config.json").exists():
        from peft import AutoPeftModelForCausalLM

        model = AutoPeftModelForCausalLM.from_pretrained(path, dtype=dtype).merge_and_unload()
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if not tokenizer.chat_template:
        raise PolicyError(f"hf agent: the tokenizer in {path} has no chat template")
    return model.to(device).eval(), tokenizer


class HFPolicy:
    """Generates the next command with a local transformers model.

    Example:
        >>> policy = HFPolicy("checkpoints/tiny-sft", max_new_tokens=128)  # doctest: +SKIP
        >>> policy.act(initial_messages("pytest fails: No module named 'yaml'")).command  # doctest: +SKIP
    """

    def __init__(
        self,
        path: str,
        *,
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        seed: int = 0,
        device: str | None = None,
        max_context_tokens: int | None = None,
        max_tokens: int | None = None,
    ) -> None:
        """`max_tokens` is an alias of `max_new_tokens` (the name `cligym run --max-tokens` passes);
        `max_context_tokens` defaults to the model's `max_position_embeddings`."""
        import torch

        self.name = f"hf:{path}"
        self.path = str(path)
        self.max_new_tokens = max_tokens or max_new_tokens
        self.temperature = temperature or 0.0
        self.seed = seed or 0
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model, self.tokenizer = load_checkpoint(str(Path(path).resolve()), self.device)
        self.max_context_tokens = max_context_tokens or getattr(
            self.model.config, "max_position_embeddings", 4096
        )
        self._turn = 0
        self._lock = threading.Lock()  # one model may serve several episodes' threads

    def _stop_ids(self) -> list[int]:
        ids = {self.tokenizer.eos_token_id, self.tokenizer.convert_tokens_to_ids("<|im_end|>")}
        eos = self.model.generation_config.eos_token_id
        ids.update(eos if isinstance(eos, list) else [eos])
        return sorted(i for i in ids if isinstance(i, int) and i >= 0 and i != self.tokenizer.unk_token_id)

    def _prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The rendered prompt, fitted to the context: old observations are elided first, then the oldest
        tokens are dropped (the system prompt and the task are elided last)."""
        budget = self.max_context_tokens - self.max_new_tokens
        fitted = [dict(m) for m in messages]
        observations = [i for i, m in enumerate(fitted) if i >= 2 and m["role"] == "user"]
        while True:
            ids = self.tokenizer.apply_chat_template(fitted, add_generation_prompt=True, tokenize=True)
            ids = list(ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids)
            if len(ids) <= budget or not observations:
                return ids[-budget:] if budget > 0 else ids[-1:]
            fitted[observations.pop(0)]["content"] = ELIDED

    def act(self, messages: list[dict[str, str]]) -> Action:
        import torch

        prompt = self._prompt_ids(messages)
        sample = self.temperature > 0
        with self._lock, torch.inference_mode():
            torch.manual_seed(self.seed * 100_003 + self._turn)  # reproducible per (seed, turn)
            self._turn += 1
            output = self.model.generate(
                torch.tensor([prompt], device=self.device),
                attention_mask=torch.ones(1, len(prompt), dtype=torch.long, device=self.device),
                max_new_tokens=self.max_new_tokens,
                do_sample=sample,
                temperature=self.temperature if sample else None,
                top_p=None,
                top_k=None,
                eos_token_id=self._stop_ids(),
                pad_token_id=self.tokenizer.pad_token_id,
            )
        completion = output[0, len(prompt) :].tolist()
        reply = self.tokenizer.decode(completion, skip_special_tokens=True).strip()
        usage = {"prompt_tokens": len(prompt), "completion_tokens": len(completion)}
        return Action(command=command_of(reply), message=reply, usage=usage)
