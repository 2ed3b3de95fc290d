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


SHELL_LANGUAGES = ("", "bash", "sh", "shell", "console", "zsh", "terminal")
"""Info strings of a fenced block that holds a command (no info string counts: ```\nls\n```)."""
_OPEN = re.compile(r"^ {0,3}(`{3,})[ \t]*([\w+.-]*)[^`\n]*$")
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.S)


def visible_text(reply: str) -> str:
    """`reply` without its thinking: closed `<think>...</think>` blocks, a `<think>` never closed (a reply cut off
    while thinking: everything after it), and all before a lone `</think>` (a server that strips the opening tag)."""
    text = _THINK_BLOCK.sub("", reply)
    if "</think>" in text:
        text = text.rsplit("</think>", 1)[1]
    if "<think>" in text:
        text = text.split("<think>", 1)[0]
    return text


def fenced_blocks(text: str) -> tuple[list[tuple[str, str]], bool]:
    """The fenced code blocks of `text` as (language, body), paired line by line as Markdown pairs them (a
    closing fence is a line of at least as many backticks and nothing else), and whether the last block is
    never closed (a reply cut off inside it)."""
    blocks: list[tuple[str, str]] = []
    fence, language, body = "", "", []
    for line in text.splitlines():
        if fence:
            stripped = line.strip()
            if stripped.startswith(fence) and not stripped.strip("`"):
                blocks.append((language, "\n".join(body)))
                fence = ""
            else:
                body.append(line)
            continue
        opened = _OPEN.match(line)
        if opened:
            fence, language, body = opened[1], opened[2].lower(), []
    return blocks, bool(fence)


def parse_command(reply: str) -> str | None:
    """The command in a reply: the last complete fenced block of a shell language (or none), outside any
    thinking, stripped; None if there is none. A block in another language (```text, ```json, ```python) is
    never run, nor a block the reply was cut off in, nor a command drafted inside `<think>`.

    >>> parse_command("Check it.\\n```bash\\nls -l\\n```")
    'ls -l'
    >>> parse_command("```text\\nerror\\n```\\nSo:\\n```bash\\npip check\\n```\\n```json\\n{}\\n```")
    'pip check'
    >>> parse_command("<think>maybe\\n```bash\\nrm -rf /opt\\n```") is None
    True
    """
    blocks, _ = fenced_blocks(visible_text(reply))
    for language, body in reversed(blocks):
        if language in SHELL_LANGUAGES:
            command = body.strip()
            prompted = [ln.removeprefix("$ ") for ln in command.splitlines() if ln.startswith("$ ")]
            if language == "console" and prompted:  # a `$ cmd` transcript: the commands, not their output
                command = "\n".join(prompted)
            return command or None
    return None


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
