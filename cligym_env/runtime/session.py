"""A persistent bash inside a container, driven over one attached exec socket.

Example:
    >>> with ContainerSession.start("cligym/base:test", workdir="/tmp") as s:
    ...     _ = s.run("cd /etc && export X=1")
    ...     s.run("echo $PWD $X").output
    '/etc 1\\n'
"""

from __future__ import annotations

import re
import secrets
import selectors
import time
from dataclasses import dataclass

import docker.errors
from docker.models.containers import Container

from cligym_env.errors import CligymError
from cligym_env.runtime import containers

_GRACE_SECONDS = 2.0  # after SIGINT, how long a timed-out command gets to stop before the shell is replaced
_RECV_BYTES = 1 << 20

# `$'...'` quoting, byte by byte: printable ASCII stays, the rest (quotes, backslashes, newlines, non-ASCII)
# becomes \xHH. The result is one line that no command text can break out of, and bash decodes it itself.
_ANSI_C = [chr(b) if 0x20 <= b < 0x7F and b not in b"'\\" else f"\\x{b:02x}" for b in range(256)]


def _quote(text: str) -> str:
    """`text` as one bash word in `$'...'` quoting (NUL bytes, which bash cannot hold, are dropped)."""
    return "$'" + "".join(_ANSI_C[b] for b in text.encode("utf-8", errors="replace") if b) + "'"


# Sent once per shell. The trap makes SIGINT (sent on timeout) abort the whole command, not just its current
# program, by returning from the function that runs it; stdin is redirected per call (see `run`).
# The profile files are read like a login shell's (`bash -l`, which runs test commands), so the agent sees the
# same environment the tests do; their output is discarded.
_SHELL_SETUP = """\
exec 2>&1
for __cligym_f in /etc/profile ~/.profile; do [ -r "$__cligym_f" ] && . "$__cligym_f"; done >/dev/null 2>&1 </dev/null
unset __cligym_f
__cligym_run() { trap 'trap - INT; return 130' INT; builtin eval "$__cligym_cmd"; }
"""


@dataclass
class CommandResult:
    """What one command in a `ContainerSession` did."""

    output: str
    """stdout and stderr merged in order, decoded as UTF-8 (invalid bytes replaced), capped, with any
    `[cligym] ...` notes (timeout, shell restart) on lines at the end."""
    exit_code: int | None
    """The command's exit status; 124 if it timed out and was interrupted; None if the shell had to be replaced
    after a timeout. After the shell exits (`exit 3`) it is the shell's exit status."""
    seconds: float
    """Wall-clock time from sending the command to reading its end."""
    timed_out: bool
    """True when the command ran past its timeout."""
    truncated: bool
    """True when the output was longer than the session's cap and its middle was dropped."""
    shell_restarted: bool
    """True when the shell exited or had to be killed and a fresh one was started (in the last known cwd;
    variables exported by earlier commands are lost)."""


class _OutputCap:
    """Keeps the first `head` and last `tail` bytes of a stream, and counts the rest, in bounded memory."""

    def __init__(self, cap: int) -> None:
        self.head_size = cap * 6 // 10
        self.tail_size = cap - self.head_size
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = self.head_size - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > 2 * self.tail_size + _RECV_BYTES:
                del self.tail[: len(self.tail) - self.tail_size]

    def text(self) -> tuple[str, bool]:
        """The kept output as text, and whether anything was dropped."""
        tail = self.tail[len(self.tail) - self.tail_size :] if len(self.tail) > self.tail_size else self.tail
        dropped = self.total - len(self.head) - len(tail)
        if dropped <= 0:
            return (self.head + tail).decode("utf-8", errors="replace"), False
        marker = f"\n[... {dropped} bytes truncated ...]\n".encode()
        return (self.head + marker + tail).decode("utf-8", errors="replace"), True


class _ShellExited(Exception):
    """The shell's stream ended (it exited or was killed)."""


class ContainerSession:
    """One long-lived bash inside a container, driven over ONE attached exec socket (not one docker exec per
    command).

    `cd` and `export` persist between `run` calls; every command reads /dev/null as stdin, is framed so that
    no text can break it (quotes, heredocs, trailing backslashes), and has a timeout after which it gets
    SIGINT and, if it does not stop within 2 s, the shell is replaced. If the shell exits (`exit`,
    `kill -9 $$`, a failure under `set -e`, which persists as in a terminal) a fresh one is started in the
    last known cwd with the session's `env`; variables exported by commands are lost then. Output is capped
    at `output_cap` bytes (the head and the tail are kept). Output that a background job prints after its
    command ended is reported with the next command. Not thread-safe: one thread per session.

    Example:
        >>> with ContainerSession.start("cligym/base:test") as s:
        ...     r = s.run("sleep 30", timeout=1)
        >>> r.timed_out, r.exit_code
        (True, 124)
    """

    def __init__(
        self,
        container: Container,
        *,
        workdir: str | None = None,
        env: dict | None = None,
        output_cap: int = 16_384,
        default_timeout: float = 120.0,
        owns_container: bool = False,
    ) -> None:
        self.container = container
        self.workdir = workdir
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.output_cap = output_cap
        self.default_timeout = default_timeout
        self.owns_container = owns_container
        self.cwd = workdir  # last cwd the shell reported
        self._token = secrets.token_hex(12).encode()
        self._start = b"\n" + self._token + b":"  # sentinel line: \n<token>:<rc>:<pwd>:<token>\n
        self._end = b":" + self._token + b"\n"
        self._sock = self._raw = self._exec_id = None
        self._pid = 0
        self._closed = False
        self._selector = selectors.DefaultSelector()
        try:
            self._start_shell()
        except BaseException:
            self.close()
            raise

    @classmethod
    def start(cls, image: str, **kwargs) -> ContainerSession:
        """Start a container from `image` (see `containers.start_container` for its keyword arguments) and a
        session in it; the session owns the container and removes it on `close`."""
        session_keys = ("output_cap", "default_timeout")
        session_kwargs = {k: kwargs.pop(k) for k in session_keys if k in kwargs}
        container = containers.start_container(image, **kwargs)
        try:
            return cls(
                container,
                workdir=kwargs.get("workdir"),
                env=kwargs.get("env"),
                owns_container=True,
                **session_kwargs,
            )
        except BaseException:
            containers.remove_container(container)
            raise

    def __enter__(self) -> ContainerSession:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run `command` (any bash text, several lines allowed) in the shell and return what it did."""
        if self._closed:
            raise CligymError("this ContainerSession is closed")
        timeout = self.default_timeout if timeout is None else timeout
        line = f"__cligym_cmd={_quote(command)}; __cligym_run </dev/null; {self._sentinel_line('$?')}"
        started = time.monotonic()
        out = _OutputCap(self.output_cap)
        notes, exit_code, timed_out, restarted = [], None, False, False
        try:
            self._restart_if_exited(notes)
            restarted = bool(notes)
            self._raw.sendall(line.encode())
            exit_code = self._read_until_sentinel(out, started + timeout)
            if exit_code is None:  # timed out: interrupt the command and give it a moment to stop
                timed_out = True
                notes.append(f"[cligym] command timed out after {timeout:g}s")
                self._signal("INT")
                if self._read_until_sentinel(out, time.monotonic() + _GRACE_SECONDS) is None:
                    notes.append(
                        "[cligym] it did not stop on SIGINT; the shell was killed and a new one started"
                    )
                    self._restart_shell(kill=True)
                    restarted = True
                else:
                    exit_code = 124
        except (_ShellExited, OSError):
            exit_code = containers.exec_exit_code(self._exec_id)
            notes.append(f"[cligym] shell exited (code {exit_code}); a new shell was started")
            self._restart_shell(kill=False)
            restarted = True
        text, truncated = out.text()
        if notes:
            text += ("" if not text or text.endswith("\n") else "\n") + "\n".join(notes) + "\n"
        return CommandResult(text, exit_code, time.monotonic() - started, timed_out, truncated, restarted)

    def close(self) -> None:
        """Stop the shell and, if the session owns its container, remove the container. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._close_socket()
        self._selector.close()
        if self.owns_container:
            containers.remove_container(self.container)

    # -- the shell ---------------------------------------------------------------------------------------

    def _sentinel_line(self, number: str) -> str:
        """The bash line that prints the sentinel with `number` (an exit status, or the shell's pid) and cwd."""
        token = self._token.decode()
        return f"builtin printf '\\n%s:%d:%s:%s\\n' {token} {number} \"$PWD\" {token}\n"

    def _start_shell(self, cwd: str | None = None) -> None:
        """Start bash on a new exec socket, set it up and wait for it to report its pid."""
        env = {"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", **self.env}  # no colors, no pagers waiting
        try:
            self._exec_id, self._sock, self._raw = containers.open_exec_socket(
                self.container,
                ["bash", "--noprofile", "--norc"],  # runc makes it a session leader: its pgid is its pid
                stdin=True,
                tty=False,
                environment=[f"{k}={v}" for k, v in env.items()],
            )
        except docker.errors.APIError as e:
            raise CligymError(
                f"could not start a shell in container {self.container.name}: {e.explanation}"
            ) from e
        self._selector.register(self._raw, selectors.EVENT_READ)
        self._decoder, self._pending = containers.FrameDecoder(), bytearray()
        setup = _SHELL_SETUP
        for path in dict.fromkeys(p for p in (cwd, self.workdir) if p):
            setup += f"cd -- {_quote(path)} 2>/dev/null ||\n"
        if cwd or self.workdir:
            setup += f"{{ echo cannot cd to {_quote(self.workdir or cwd)}; exit 97; }}\n"
        setup += self._sentinel_line("$$")
        out = _OutputCap(self.output_cap)
        try:
            self._raw.sendall(setup.encode())
            pid = self._read_until_sentinel(out, time.monotonic() + 30)
        except _ShellExited:
            pid = None
        if pid is None:
            raise CligymError(
                f"could not start a shell in container {self.container.name}: {out.text()[0].strip() or 'no output'}"
            )
        self._pid = pid

    def _restart_if_exited(self, notes: list[str]) -> None:
        """Keep output that came after the last command (background jobs); restart the shell if it has exited
        since (e.g. a background `kill $$`), so the next command is not sent into a dead stream."""
        try:
            while self._selector.select(0):
                data = self._raw.recv(_RECV_BYTES)
                if not data:
                    raise _ShellExited
                self._pending += self._decoder.feed(data)
        except (_ShellExited, OSError):
            code = containers.exec_exit_code(self._exec_id)
            notes.append(f"[cligym] the shell had exited (code {code}); a new shell was started")
            self._restart_shell(kill=False)

    def _restart_shell(self, *, kill: bool) -> None:
        if kill:
            self._signal("KILL")
        self._close_socket()
        self._start_shell(self.cwd)

    def _close_socket(self) -> None:
        if self._raw is not None:
            self._selector.unregister(self._raw)
            self._sock.close()
            self._raw.close()
            self._sock = self._raw = None

    def _signal(self, signal: str) -> None:
        """Signal the shell's process group: the shell and everything the command started (unless it left)."""
        containers.signal_process_group(self.container, self._pid, signal)

    def _read_until_sentinel(self, out: _OutputCap, deadline: float) -> int | None:
        """Read output into `out` until the sentinel line; returns its number (exit code), or None at `deadline`.

        Raises _ShellExited at end of stream. Searches bytes, so a sentinel split across reads or next to
        invalid UTF-8 is still found; keeps only a short unsearched window besides what `out` holds.
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
            if left <= 0 or not self._selector.select(left):
                self._pending = pending
                return None
            data = self._raw.recv(_RECV_BYTES)
            if not data:
                out.add(bytes(pending))
                self._pending = bytearray()
                raise _ShellExited
            pending += self._decoder.feed(data)
