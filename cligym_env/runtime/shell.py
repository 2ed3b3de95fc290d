"""One bash in a container, spoken to over an attached exec socket: what `ContainerSession` sends and reads.

Each command line ends by printing a sentinel line, ``\\n<token>:<number>:<cwd>:<token>\\n``, with a random
token; `ShellStream.read_until_sentinel` reads output up to it and returns the number (an exit status, or
the shell's pid after setup).

Example:
    >>> shell = ShellStream(container, {"TERM": "dumb"})
    >>> shell.send("echo hi; " + shell.sentinel_line("$?"))
    >>> out = OutputCap(1000); shell.read_until_sentinel(out, time.monotonic() + 5), out.text()[0]
    (0, 'hi\\n')
"""

from __future__ import annotations

import re
import secrets
import selectors
import time
from collections.abc import Callable

import docker.errors
import requests.exceptions
from docker.models.containers import Container

from cligym_env.errors import CligymError
from cligym_env.runtime import containers
from cligym_env.runtime.output import OutputCap

_RECV_BYTES = 1 << 20

# `$'...'` quoting, byte by byte: printable ASCII stays, the rest (quotes, backslashes, newlines, non-ASCII)
# becomes \xHH. The result is one line that no command text can break out of, and bash decodes it itself.
_ANSI_C = [chr(b) if 0x20 <= b < 0x7F and b not in b"'\\" else f"\\x{b:02x}" for b in range(256)]


def quote(text: str) -> str:
    """`text` as one bash word in `$'...'` quoting (NUL bytes, which bash cannot hold, are dropped)."""
    return "$'" + "".join(_ANSI_C[b] for b in text.encode("utf-8", errors="replace") if b) + "'"


class ShellExited(Exception):
    """The shell's stream ended (it exited or was killed)."""


class ShellStream:
    """``bash --noprofile --norc`` started with `docker exec` (stdin attached, no tty): send it text, read
    what it prints up to a sentinel line. Raises CligymError if Docker cannot start it."""

    def __init__(self, container: Container, env: dict[str, str]) -> None:
        self._token = secrets.token_hex(12).encode()
        self._start = b"\n" + self._token + b":"
        self._end = b":" + self._token + b"\n"
        try:
            self.exec_id, self._sock, self._raw = containers.open_exec_socket(
                container,
                ["bash", "--noprofile", "--norc"],  # runc makes it a session leader: its pgid is its pid
                stdin=True,
                tty=False,
                environment=[f"{k}={v}" for k, v in env.items()],
            )
        except docker.errors.APIError as e:
            raise CligymError(
                f"could not start a shell in container {container.name}: {e.explanation}"
            ) from e
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._raw, selectors.EVENT_READ)
        self._decoder, self._pending = containers.FrameDecoder(), bytearray()
        self.cwd: str | None = None
        """The cwd the last sentinel reported."""

    def sentinel_line(self, number: str) -> str:
        """The bash line that prints the sentinel with `number` (e.g. "$?" or "$$") and the cwd."""
        token = self._token.decode()
        return f"builtin printf '\\n%s:%d:%s:%s\\n' {token} {number} \"$PWD\" {token}\n"

    def send(self, text: str) -> None:
        """Write `text` to the shell's stdin (OSError if the stream is gone)."""
        self._raw.sendall(text.encode())

    def drain(self) -> None:
        """Take in what the shell printed since the last sentinel (background jobs), for the next read.

        Raises ShellExited if the stream has ended (e.g. a background `kill $$`)."""
        while self._selector.select(0):
            data = self._raw.recv(_RECV_BYTES)
            if not data:
                raise ShellExited
            self._pending += self._decoder.feed(data)

    def read_until_sentinel(
        self, out: OutputCap, deadline: float, wake: Callable[[], float] | None = None
    ) -> int | None:
        """Read output into `out` until the sentinel line; returns its number, or None at `deadline`.

        `wake` is called while waiting, at the latest when the seconds it last returned have passed (it may
        raise to stop the wait). Raises ShellExited at end of stream. Searches bytes, so a sentinel split
        across reads or next to invalid UTF-8 is still found; keeps only a short unsearched window besides
        what `out` holds.
        """
        pending = self._pending
        while True:
            start = pending.find(self._start)
            if start >= 0:
                end = pending.find(self._end, start + len(self._start))
                if end >= 0:
                    out.add(bytes(pending[:start]))
                    match = re.fullmatch(
                        rb"(-?\d+):(.*)", bytes(pending[start + len(self._start) : end]), re.S
                    )
                    self._pending = pending[end + len(self._end) :]  # late output (background jobs)
                    if match is None:  # pragma: no cover - only if a command printed our random token
                        return None
                    self.cwd = match[2].decode("utf-8", errors="replace")
                    return int(match[1])
                out.add(bytes(pending[:start]))
                del pending[:start]
            else:
                keep = len(self._start) - 1
                if len(pending) > keep:
                    out.add(bytes(pending[: len(pending) - keep]))
                    del pending[: len(pending) - keep]
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            if not self._selector.select(min(left, wake()) if wake else left):
                continue  # the deadline or a wake-up is due: both are handled above
            data = self._raw.recv(_RECV_BYTES)
            if not data:
                out.add(bytes(pending))
                self._pending = bytearray()
                raise ShellExited
            pending += self._decoder.feed(data)

    def exit_code(self) -> int | None:
        """The exit status of the shell once it has ended; None if Docker cannot say."""
        try:
            return containers.exec_exit_code(self.exec_id)
        except (docker.errors.DockerException, requests.exceptions.RequestException):
            return None

    def close(self) -> None:
        """Close the stream (the shell sees the end of its stdin). Safe to call twice."""
        if self._raw is not None:
            self._selector.close()
            self._sock.close()
            self._raw.close()
            self._sock = self._raw = None
