"""The conversation format shared by every policy, the trajectory export and training."""

from __future__ import annotations

import re

from agents.protocol import SUBMIT

SYSTEM_PROMPT = """\
You are an expert Linux and Python engineer working in a terminal. The software environment you are in is \
broken: a project's unit tests used to pass and now some fail, because something in the environment changed \
(packages, libraries, executables, permissions, configuration, environment variables, system files), not the \
project's own source code.

Find the cause and repair the environment. Do not edit the project's source or test files, and do not \
reinstall the project itself from its own checkout to hide the problem.

Rules:
- Each reply: a short thought, then exactly one shell command in a ```bash code block. It runs in a persistent \
bash session (cd and export persist) as root, with no network access; stdin is /dev/null, so never start \
interactive programs (editors, pagers, REPLs); long output is cut in the middle.
- Packages can be installed offline: pip uses a local wheelhouse, apt uses a local repository.
- When you are confident the environment is repaired, reply with a block containing only `submit`. The tests \
run then, once; there is no second chance.\
"""

_FENCE = re.compile(r"```(?:bash|sh|shell|console)?[ \t]*\n(.*?)```", re.S)


def task_message(instruction: str) -> str:
    """The first user turn: the problem statement."""
    return f"{instruction.strip()}\n\nThe project is in the current directory. Begin."


def observation_message(output: str, exit_code: int | None, timed_out: bool = False) -> str:
    """A user turn that shows a command's result."""
    status = (
        "timed out" if timed_out else f"exit code {exit_code}" if exit_code is not None else "shell restarted"
    )
    body = output if output.endswith("\n") or not output else output + "\n"
    return f"[{status}]\n{body}" if body else f"[{status}] (no output)"


def parse_command(reply: str) -> str | None:
    """The command in a reply: the last fenced code block, stripped; None if there is none.

    >>> parse_command("Check it.\\n```bash\\nls -l\\n```")
    'ls -l'
    """
    blocks = _FENCE.findall(reply)
    if not blocks:
        return None
    command = blocks[-1].strip()
    return command or None


def format_reply(thought: str, command: str) -> str:
    """A reply in the format models are asked for (scripted policies use it so their turns look the same)."""
    return f"{thought.strip()}\n```bash\n{command.strip()}\n```"


def submit_reply(thought: str = "The environment should be repaired now.") -> str:
    return format_reply(thought, SUBMIT)


def initial_messages(instruction: str) -> list[dict[str, str]]:
    """The conversation an episode starts from."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": task_message(instruction)},
    ]
