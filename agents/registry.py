"""`make_policy("noop" | "oracle" | "heuristic" | "llm" | "hf:PATH", task, **options)`: a policy by name."""

from __future__ import annotations

import inspect
import threading

from agents.protocol import Policy
from cligym_env.errors import CligymError

_loaded = threading.local()  # per worker thread: checkpoints already loaded, by (path, options)

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
        return _hf_policy(spec[3:], options)
    raise CligymError(f"unknown agent '{spec}' (use one of: {', '.join(AGENTS)})")


def _need_task(spec: str, task) -> None:
    if task is None:
        raise CligymError(f"agent '{spec}' needs the task it plays")


def _hf_policy(path: str, options: dict) -> Policy:
    """A local checkpoint's policy, loaded once per thread and options (the seed is set per episode)."""
    from agents.hf import HFPolicy  # written with training/; imported only when asked for

    accepted = inspect.signature(HFPolicy.__init__).parameters
    kwargs = {k: v for k, v in options.items() if k in accepted and v is not None}
    key = (path, tuple(sorted((k, repr(v)) for k, v in kwargs.items() if k != "seed")))
    cache = _loaded.__dict__.setdefault("policies", {})
    if key not in cache:
        cache[key] = HFPolicy(path, **kwargs)
    policy = cache[key]
    if "seed" in kwargs and hasattr(policy, "seed"):
        policy.seed = kwargs["seed"]
    return policy
