"""`make_policy("noop" | "oracle" | "heuristic" | "llm" | "hf:PATH", task, **options)`: a policy by name."""

from __future__ import annotations

from agents.protocol import Policy
from cligym_env.errors import CligymError

AGENTS = ("noop", "oracle", "heuristic", "llm", "hf:PATH")


def make_policy(spec: str, task=None, **options) -> Policy:
    """The policy `spec` names, for `task` (oracle and heuristic read it; the others ignore it).

    `options` go to the policy's constructor (for `llm`: model, base_url, api_key, temperature, max_tokens,
    seed, …; for `hf:PATH`: whatever `agents.hf.HFPolicy` takes); options a policy does not take are dropped.

    Example:
        >>> make_policy("llm", model="qwen3-8b", base_url="http://127.0.0.1:8000/v1").name
        'llm'
    """
    if spec == "noop":
        from agents.noop import NoopPolicy

        return NoopPolicy()
    if spec == "oracle":
        from agents.oracle import OraclePolicy

        _need_task(spec, task)
        return OraclePolicy(task)
    if spec == "heuristic":
        from agents.heuristic import HeuristicPolicy

        _need_task(spec, task)
        return HeuristicPolicy(task.spec.test_command, seed=options.get("seed") or 0)
    if spec == "llm":
        from agents.llm import LLMConfig, LLMPolicy

        return LLMPolicy(**{k: v for k, v in options.items() if k in LLMConfig.model_fields})
    if spec.startswith("hf:") and len(spec) > 3:
        from agents.hf import HFPolicy  # written with training/; imported only when asked for

        return HFPolicy(spec[3:], **options)
    raise CligymError(f"unknown agent '{spec}' (use one of: {', '.join(AGENTS)})")


def _need_task(spec: str, task) -> None:
    if task is None:
        raise CligymError(f"agent '{spec}' needs the task it plays")
