"""The one interface every policy implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from cligym_env.errors import CligymError

SUBMIT = "submit"


@dataclass
class Action:
    """What a policy decided: the command to run, and the reply it wrote (the SFT target)."""

    command: str
    """The shell command to run, or `submit` to end the episode and run the tests."""
    message: str
    """The assistant message exactly as the policy produced it (thought + fenced command)."""
    usage: dict[str, int] = field(default_factory=dict)
    """Token counts and the like, if the policy has them (`prompt_tokens`, `completion_tokens`)."""
    extra: dict = field(default_factory=dict)
    """Fields kept with the assistant turn in the trajectory (`tool_call`: the native tool call it came as)."""
    retries: list[dict] = field(default_factory=list)
    """Turns exchanged before `message` was accepted (a reply without a command, the reminder it got), each
    marked `"retry": True`: a trajectory keeps them, so it holds exactly what the model saw and said; they are
    never sent back to the model in later turns, nor trained on."""

    @property
    def is_submit(self) -> bool:
        return self.command.strip() == SUBMIT


def sent_messages(messages: list[dict]) -> list[dict[str, str]]:
    """The conversation as sent to a model: retry turns left out, each turn as {role, content} only."""
    return [{"role": m["role"], "content": m["content"]} for m in messages if not m.get("retry")]


class PolicyError(CligymError):
    """The policy could not produce an action (an endpoint that keeps failing, a reply with no command, …).
    `turns`: what was exchanged before it gave up (replies and reminders, marked as retries), for the record."""

    def __init__(self, message: str, turns: list[dict] | None = None):
        super().__init__(message)
        self.turns = turns or []


@runtime_checkable
class Policy(Protocol):
    """Conversation so far (OpenAI chat messages: system, user, assistant, …) -> the next action."""

    name: str

    def act(self, messages: list[dict[str, str]]) -> Action: ...


class DeadlineReached(PolicyError):
    """The episode's time ran out while the policy was waiting (e.g. on a slow endpoint): the rollout ends the
    episode as it does at its time limit, by submitting."""
