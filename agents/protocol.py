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

    @property
    def is_submit(self) -> bool:
        return self.command.strip() == SUBMIT


class PolicyError(CligymError):
    """The policy could not produce an action (an endpoint that keeps failing, a reply with no command, …)."""


@runtime_checkable
class Policy(Protocol):
    """Conversation so far (OpenAI chat messages: system, user, assistant, …) -> the next action."""

    name: str

    def act(self, messages: list[dict[str, str]]) -> Action: ...
