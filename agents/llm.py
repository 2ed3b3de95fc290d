"""`llm`: a model behind any OpenAI-compatible chat API (OpenAI, vLLM, SGLang, llama.cpp, Ollama, …).

One command per turn, in the shared `agents.prompt` format. A reply without a command is answered with a
format reminder and asked again (a bounded number of times); rate limits, server errors and timeouts are
retried with exponential backoff; when that is exhausted the policy raises `PolicyError`, which the rollout
records as the episode's error. The conversation sent to the model is kept under a token budget by eliding
old command outputs; the rollout keeps the full one.
"""

from __future__ import annotations

import json
import os
import time

from pydantic import BaseModel, Field

from agents.prompt import format_reply, parse_command
from agents.protocol import SUBMIT, Action, DeadlineReached, PolicyError, sent_messages

FORMAT_TEMPLATE = (
    "Your reply had no command. Reply with a short thought, then exactly one shell command in a ```bash code "
    "block (or a block containing only `{done}` when you are done)."
)
FORMAT_ERROR = FORMAT_TEMPLATE.format(done="submit")
ELIDED = "[output elided to save context]"
TRUNCATED = (
    "Your reply was cut off at the token limit before it gave a complete command. Think briefly, then reply "
    "with exactly one shell command in a ```bash code block."
)


class LLMConfig(BaseModel):
    """How to reach the model and how to talk to it."""

    model: str = Field(default_factory=lambda: os.environ.get("OPENAI_MODEL", "gpt-4o-mini"))
    """Model name as the endpoint knows it."""
    base_url: str | None = None
    """Endpoint, e.g. http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL, else OpenAI's)."""
    api_key: str | None = None
    """API key (default: $OPENAI_API_KEY; a placeholder is sent to endpoints that need none)."""
    temperature: float = 0.0
    """Sampling temperature (raise it for Pass@k with k > 1)."""
    max_tokens: int = 1024
    """Most tokens in one reply (a reasoning model needs room for its thinking: raise it, or turn thinking off
    with `extra_body={"chat_template_kwargs": {"enable_thinking": false}}` on vLLM)."""
    top_p: float | None = None
    """Nucleus sampling (None: the endpoint's default)."""
    extra_body: dict = Field(default_factory=dict)
    """Sent as is in each request's body: endpoint-specific knobs (vLLM: `chat_template_kwargs`, `top_k`,
    `repetition_penalty`; OpenAI: `reasoning_effort`)."""
    seed: int | None = None
    """Sampling seed, for endpoints that honour it."""
    context_tokens: int = 24_000
    """Budget for the conversation sent to the model (estimated at 4 characters a token)."""
    keep_last_turns: int = 6
    """Observations of the last K turns are never elided."""
    tool_calls: bool = False
    """Native tool calling: the model gets a `bash` tool (one `command`) and a `submit` tool instead of replying
    with a fenced block (vLLM: start it with `--enable-auto-tool-choice --tool-call-parser NAME`). A reply in
    the text format is still taken. The trajectory keeps each turn in the text format too (thought + fenced
    command, what SFT trains on), with the call itself under `tool_call`."""
    done_command: str = "submit"
    """The word that ends the conversation, named in the format reminder (the inverter's is `finish`)."""
    format_retries: int = 2
    """Replies without a command tolerated in a row before the policy gives up."""
    api_retries: int = 4
    """Retries of a failed request (429, 5xx, timeouts, connection errors) before the policy gives up."""
    backoff_seconds: float = 1.0
    """First wait between retries; doubled each time."""
    timeout_seconds: float = 120.0
    """One request's timeout."""


def estimate_tokens(messages: list[dict[str, str]]) -> int:
    """A cheap token estimate: 4 characters a token, plus a few per message."""
    return sum(len(m["content"]) // 4 + 4 for m in messages)


def fit_context(messages: list[dict[str, str]], budget: int, keep_last_turns: int) -> list[dict[str, str]]:
    """The conversation with the oldest observations elided until it fits `budget` tokens.

    The system prompt, the task and the last `keep_last_turns` observations are always kept whole.
    """
    fitted = [dict(m) for m in messages]
    observations = [i for i, m in enumerate(fitted) if i >= 2 and m["role"] == "user"]
    for i in observations[: max(len(observations) - keep_last_turns, 0)]:
        if estimate_tokens(fitted) <= budget:
            break
        fitted[i]["content"] = ELIDED
    return fitted


class LLMPolicy:
    """Asks a chat model for the next command.

    Example:
        >>> policy = LLMPolicy(model="qwen3-8b", base_url="http://127.0.0.1:8000/v1")
        >>> policy.act(initial_messages("tests fail")).command
        'python -m pytest -x -q'
    """

    name = "llm"

    def __init__(self, **options) -> None:
        self.config = LLMConfig(**{k: v for k, v in options.items() if v is not None})
        try:
            import openai
        except ImportError:
            raise PolicyError("the llm agent needs the `openai` package: pip install 'cligym[llm]'") from None
        self._openai = openai
        self.client = openai.OpenAI(
            base_url=self.config.base_url or os.environ.get("OPENAI_BASE_URL"),
            api_key=self.config.api_key or os.environ.get("OPENAI_API_KEY") or "not-needed",
            timeout=self.config.timeout_seconds,
            max_retries=0,  # retried here, with our own backoff and error record
        )
        self.deadline: float | None = None
        """`time.monotonic()` by which the episode ends (set by the rollout): requests are cut short to it."""

    def act(self, messages: list[dict[str, str]]) -> Action:
        cfg = self.config
        history = [m for m in messages if not m.get("retry")]
        conversation = wire_messages(
            fit_context(history, cfg.context_tokens, cfg.keep_last_turns), cfg.tool_calls
        )
        usage = {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0, "format_errors": 0}
        retries: list[dict] = []
        for _ in range(cfg.format_retries + 1):
            reply, used, finish, call = self._complete(conversation)
            for key in ("prompt_tokens", "completion_tokens"):
                usage[key] += used.get(key, 0)
            usage["requests"] += 1
            if call is not None:  # a native tool call: its command, and the turn in the text format too
                command = SUBMIT if call["name"] == "submit" else call["command"]
                return Action(
                    command, format_reply(reply or "", command), usage, {"tool_call": call}, retries
                )
            command = parse_command(reply)  # never a block left open by a cut-off reply, nor one in thinking
            if command:
                return Action(command, reply, usage, retries=retries)
            usage["format_errors"] += 1
            reminder = TRUNCATED if finish == "length" else FORMAT_TEMPLATE.format(done=cfg.done_command)
            if cfg.tool_calls and finish != "length":
                reminder = TOOL_FORMAT_ERROR
            turns = [{"role": "assistant", "content": reply}, {"role": "user", "content": reminder}]
            conversation += turns
            retries += [{**turn, "retry": True} for turn in turns]
        raise PolicyError(
            f"model {cfg.model} gave {usage['format_errors']} replies in a row without a command",
            turns=retries,
        )

    def _complete(self, conversation: list[dict]) -> tuple[str, dict[str, int], str | None, dict | None]:
        """One chat completion: (content, usage, finish_reason, the tool call or None). Retried with exponential
        backoff on rate limits, server errors, timeouts and malformed bodies (not JSON, or no choice or message
        in it)."""
        cfg, openai = self.config, self._openai
        retryable = (
            openai.RateLimitError,
            openai.InternalServerError,
            openai.APITimeoutError,
            openai.APIConnectionError,
            openai.APIResponseValidationError,
            MalformedResponse,
            ValueError,  # a body that is not JSON (json.JSONDecodeError)
        )
        for attempt in range(cfg.api_retries + 1):
            timeout = cfg.timeout_seconds
            if self.deadline is not None:  # a request never outlives the episode
                timeout = min(timeout, self.deadline - time.monotonic())
                if timeout <= 0:
                    raise DeadlineReached("the episode's time ran out while waiting for the model")
            try:
                response = self.client.with_options(timeout=timeout).chat.completions.create(
                    model=cfg.model,
                    messages=conversation,
                    temperature=cfg.temperature,
                    max_tokens=cfg.max_tokens,
                    seed=cfg.seed,
                    **({"top_p": cfg.top_p} if cfg.top_p is not None else {}),
                    **({"extra_body": cfg.extra_body} if cfg.extra_body else {}),
                    **({"tools": TOOLS} if cfg.tool_calls else {}),
                )
                choice = _first_choice(response)
            except retryable as exc:
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    raise DeadlineReached(
                        f"the episode's time ran out waiting for the model ({exc})"
                    ) from exc
                if attempt == cfg.api_retries:
                    raise PolicyError(
                        f"endpoint failed {attempt + 1} times: {type(exc).__name__}: {exc}"
                    ) from exc
                pause = cfg.backoff_seconds * 2**attempt
                if self.deadline is not None:
                    pause = min(pause, max(self.deadline - time.monotonic(), 0.0))
                time.sleep(pause)
                continue
            except openai.APIStatusError as exc:  # 4xx other than 429: retrying will not help
                raise PolicyError(f"endpoint refused the request: {exc.status_code} {exc.message}") from exc
            usage = response.usage.model_dump() if getattr(response, "usage", None) else {}
            call = _tool_call(choice.message) if cfg.tool_calls else None
            return choice.message.content or "", usage, getattr(choice, "finish_reason", None), call
        raise AssertionError("unreachable")


TOOLS = [
    {"type": "function", "function": {
        "name": "bash", "description": "Run one shell command in the persistent bash session; returns its output.",
        "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]},
    }},
    {"type": "function", "function": {
        "name": "submit", "description": "End the episode: the tests run once, now.",
        "parameters": {"type": "object", "properties": {}},
    }},
]  # fmt: skip
TOOL_FORMAT_ERROR = (
    "Your reply called no tool. Call the `bash` tool with exactly one shell command, or `submit` when the "
    "environment is repaired."
)


def _tool_call(message) -> dict | None:
    """The first tool call of a reply as {id, name, command}, or None (none, or one that cannot be run)."""
    for call in getattr(message, "tool_calls", None) or []:
        function = getattr(call, "function", None)
        name = getattr(function, "name", None)
        call_id = getattr(call, "id", None) or "call_0"
        if name == "submit":
            return {"id": call_id, "name": name, "command": SUBMIT}
        if name == "bash":
            try:
                command = json.loads(function.arguments or "{}").get("command")
            except (ValueError, AttributeError):
                return None
            if isinstance(command, str) and command.strip():
                return {"id": call_id, "name": name, "command": command.strip()}
    return None


def wire_messages(messages: list[dict], tool_calls: bool) -> list[dict]:
    """The conversation as the API wants it: {role, content} turns; with native tool calls, an assistant turn
    that came as a call is sent as that call, and the observation after it as the tool's answer."""
    if not tool_calls:
        return sent_messages(messages)
    out: list[dict] = []
    pending: str | None = None
    for m in messages:
        call = m.get("tool_call") if m["role"] == "assistant" else None
        if call:
            arguments = json.dumps({"command": call["command"]}) if call["name"] == "bash" else "{}"
            out.append({"role": "assistant", "content": None, "tool_calls": [
                {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": arguments}}
            ]})  # fmt: skip
            pending = call["id"]
        elif pending is not None and m["role"] == "user":
            out.append({"role": "tool", "tool_call_id": pending, "content": m["content"]})
            pending = None
        else:
            out.append({"role": m["role"], "content": m["content"]})
            pending = None
    return out


class MalformedResponse(Exception):
    """A 200 response without a usable choice: retried like a server error."""


def _first_choice(response):
    choices = getattr(response, "choices", None)
    if not choices or getattr(choices[0], "message", None) is None:
        raise MalformedResponse(f"the response has no choice with a message: {str(response)[:200]}")
    return choices[0]
