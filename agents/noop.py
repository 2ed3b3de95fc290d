"""`noop`: submits at once. The floor every other policy should beat (a task it solves is not broken)."""

from __future__ import annotations

from agents.prompt import submit_reply
from agents.protocol import SUBMIT, Action


class NoopPolicy:
    """Submits on its first turn without running anything."""

    name = "noop"

    def act(self, messages: list[dict[str, str]]) -> Action:
        return Action(SUBMIT, submit_reply("Nothing to do; submitting as is."))
