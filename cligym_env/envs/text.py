"""Text spaces for shell commands and their output."""

from __future__ import annotations

import string

from gymnasium import spaces

# Printable ASCII and whitespace: every character a shell command needs (the Text default is letters+digits only).
SHELL_CHARSET = frozenset(string.printable)


def text_space(max_length: int, min_length: int = 0) -> spaces.Text:
    return spaces.Text(max_length=max_length, min_length=min_length, charset=SHELL_CHARSET)


def to_observation(text: str, max_length: int) -> str:
    """Fit `text` into the observation space: other characters become '?', and it is cut to `max_length`.

    The raw text always travels in `info["output"]` too.
    """
    clean = (
        text
        if text.isascii() and all(c in SHELL_CHARSET for c in text)
        else "".join(c if c in SHELL_CHARSET else "?" for c in text)
    )
    if len(clean) > max_length:
        marker = "\n[... cut to fit the observation space ...]\n"
        keep = max_length - len(marker)
        clean = clean[: keep // 2] + marker + clean[len(clean) - (keep - keep // 2) :]
    return clean
