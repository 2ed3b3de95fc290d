"""`oracle`: replays the task's verified `solution.sh`, then submits. The ceiling, and a check on the tasks."""

from __future__ import annotations

from agents.prompt import format_reply, submit_reply
from agents.protocol import SUBMIT, Action


class OraclePolicy:
    """Runs the task's `solution.sh` as one command, then submits.

    Example:
        >>> policy = OraclePolicy(load_task("tasks/generated/tabulate-wide-chars"))
        >>> policy.act(initial_messages("...")).command
        'pip install wcwidth'
    """

    name = "oracle"

    def __init__(self, task) -> None:
        self.solution = task.solution_script().strip()

    def act(self, messages: list[dict[str, str]]) -> Action:
        if any(m["role"] == "assistant" for m in messages):
            return Action(SUBMIT, submit_reply("The known repair has run; submitting."))
        return Action(self.solution, format_reply("Apply the known repair (solution.sh).", self.solution))
