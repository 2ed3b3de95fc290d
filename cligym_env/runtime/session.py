"""A persistent bash inside a container, driven over one attached exec socket.

Example:
    >>> with ContainerSession.start("cligym/base:test", workdir="/tmp") as s:
    ...     _ = s.run("cd /etc && export X=1")
    ...     s.run("echo $PWD $X").output
    '/etc 1\\n'
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import docker.errors
import requests.exceptions
from docker.models.containers import Container

from cligym_env.errors import CligymError
from cligym_env.runtime import containers
from cligym_env.runtime.disk import DiskWatch
from cligym_env.runtime.output import OutputCap
from cligym_env.runtime.shell import ShellExited, ShellStream, quote

_GRACE_SECONDS = 2.0  # after SIGINT, how long a timed-out command gets to stop before the shell is replaced
_DISK_CHECK_AT_END = 1.0  # a command that ran this long gets a disk check as it ends, even if none is due

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
    `[cligym] ...` notes (timeout, shell restart, disk limit, container gone) on lines at the end."""
    exit_code: int | None
    """The command's exit status; 124 if it timed out and was interrupted; 130 if it was interrupted for
    crossing the disk limit; None if the shell had to be replaced after an interrupt, or the container is
    gone. After the shell exits (`exit 3`) it is the shell's exit status."""
    seconds: float
    """Wall-clock time from sending the command to reading its end."""
    timed_out: bool
    """True when the command ran past its timeout."""
    truncated: bool
    """True when the output was longer than the session's cap and its middle was dropped."""
    shell_restarted: bool
    """True when the shell exited or had to be killed and a fresh one was started (in the last known cwd;
    variables exported by earlier commands are lost)."""
    disk_exceeded: bool = False
    """True when the container had written more than its disk limit (`ContainerLimits.disk`) while the
    command ran (it was interrupted) or when it ended. What was written stays: the caller decides (an env
    ends the episode)."""
    container_gone: bool = False
    """True when no command can run: the container stopped (`kill 1` inside, `docker kill` or `docker stop`
    outside), was paused or removed, or no shell starts in it. `exit_code` is None then; a later `run` tries
    again (and works if the container runs again, e.g. after `docker unpause`)."""


@dataclass
class _Outcome:
    """What `ContainerSession.run` has learned so far about one command."""

    out: OutputCap
    started: float
    notes: list[str] = field(default_factory=list)
    exit_code: int | None = None
    timed_out: bool = False
    restarted: bool = False
    disk_exceeded: bool = False
    container_gone: bool = False

    def result(self) -> CommandResult:
        text, truncated = self.out.text()
        if self.notes:
            text += ("" if not text or text.endswith("\n") else "\n") + "\n".join(self.notes) + "\n"
        seconds = time.monotonic() - self.started
        return CommandResult(
            text, self.exit_code, seconds, self.timed_out, truncated, self.restarted,
            self.disk_exceeded, self.container_gone,
        )  # fmt: skip


class _DiskLimitExceeded(Exception):
    """The container has written more than its disk limit (args[0]: the bytes written)."""


# What the Docker side raises when the container is stopped, paused or removed, or the daemon is unreachable;
# CligymError: no shell could be started.
_CONTAINER_ERRORS = (CligymError, docker.errors.DockerException, requests.exceptions.RequestException)


class ContainerSession:
    """One long-lived bash inside a container, driven over ONE attached exec socket (not one docker exec per
    command).

    `cd` and `export` persist between `run` calls; every command reads /dev/null as stdin, is framed so that
    no text can break it (quotes, heredocs, trailing backslashes), and has a timeout after which it gets
    SIGINT and, if it does not stop within 2 s, the shell is replaced. If the shell exits (`exit`,
    `kill -9 $$`, a failure under `set -e`, which persists as in a terminal) a fresh one is started in the
    last known cwd with the session's `env`; variables exported by commands are lost then. Output is capped
    at `output_cap` bytes (the head and the tail are kept). Output that a background job prints after its
    command ended is reported with the next command. While a command runs, the container's disk usage is
    checked every 2 s against `disk_limit`; a command that crosses it is interrupted like a timed-out one.
    `run` does not raise for what happens to the container (see `CommandResult.container_gone`). Not
    thread-safe: one thread per session.

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
        disk_limit: int | None = None,
    ) -> None:
        """`disk_limit`: bytes the container may write (0: not watched); by default the limit
        `containers.start_container` recorded on it (label cligym.disk-limit), if any."""
        self.container = container
        self.workdir = workdir
        self.env = {str(k): str(v) for k, v in (env or {}).items()}
        self.output_cap = output_cap
        self.default_timeout = default_timeout
        self.owns_container = owns_container
        label = (container.labels or {}).get(containers.DISK_LABEL, "")
        self._disk = DiskWatch(
            container, int(label) if disk_limit is None and label.isdigit() else disk_limit
        )
        self._cwd = workdir  # the cwd the last shell reported, kept for the next one
        self._shell: ShellStream | None = None
        self._pid = 0  # the live shell's pid (0: none)
        self._lost_pid = 0  # the shell given up when the container went away; killed if it comes back
        self._closed = False
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
        """Run `command` (any bash text, several lines allowed) in the shell and return what it did.

        Never raises for what the command or the container did (the shell exited, the container stopped, was
        paused or removed): the result says so. Raises CligymError only if the session is closed.
        """
        if self._closed:
            raise CligymError("this ContainerSession is closed")
        timeout = self.default_timeout if timeout is None else timeout
        outcome = _Outcome(OutputCap(self.output_cap), time.monotonic())
        try:
            try:
                self._ensure_shell(outcome)
                end = self._shell.sentinel_line("$?")
                self._shell.send(f"__cligym_cmd={quote(command)}; __cligym_run </dev/null; {end}")
                self._wait_for_command(outcome, timeout)
            except (ShellExited, OSError):
                outcome.exit_code = self._shell.exit_code() if self._shell else None
                self._restart_shell(kill=False)
                outcome.notes.append(
                    f"[cligym] shell exited (code {outcome.exit_code}); a new shell was started"
                )
                outcome.restarted = True
        except _CONTAINER_ERRORS as e:
            self._give_up_shell(outcome, e)
        if not (outcome.disk_exceeded or outcome.container_gone):
            self._check_disk_at_end(outcome)
        return outcome.result()

    @property
    def cwd(self) -> str | None:
        """The shell's working directory after the last command (None before any, without a workdir)."""
        return (self._shell.cwd if self._shell else None) or self._cwd

    def container_state(self) -> str:
        """The container's state as Docker reports it: "running", "paused", "exited", ...; "removed" if it is
        gone (see `containers.container_state`)."""
        return containers.container_state(self.container)

    def close(self) -> None:
        """Stop the shell and, if the session owns its container, remove the container. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._close_shell()
        if self.owns_container:
            containers.remove_container(self.container)

    # -- one command ---------------------------------------------------------------------------------------

    def _ensure_shell(self, outcome: _Outcome) -> None:
        """Make sure a live shell waits for the command: keep output that came after the last command
        (background jobs); start a new shell if the last one has exited since (e.g. a background `kill $$`)
        or was given up with the container."""
        if self._shell is None:
            if self._lost_pid:  # the container runs again (or this raises): end what the lost shell ran
                self._signal("KILL", self._lost_pid)
                self._lost_pid = 0
            self._start_shell(self.cwd)
            outcome.notes.append(
                "[cligym] a new shell was started (the last one was lost with the container)"
            )
            outcome.restarted = True
            return
        try:
            self._shell.drain()
        except (ShellExited, OSError):
            code = self._shell.exit_code()
            self._restart_shell(kill=False)
            outcome.notes.append(f"[cligym] the shell had exited (code {code}); a new shell was started")
            outcome.restarted = True

    def _wait_for_command(self, outcome: _Outcome, timeout: float) -> None:
        """Read the command's output until it ends; interrupt it at its timeout or when the container crosses
        its disk limit."""
        try:
            deadline = outcome.started + timeout
            outcome.exit_code = self._shell.read_until_sentinel(outcome.out, deadline, wake=self._check_disk)
        except _DiskLimitExceeded as e:
            outcome.disk_exceeded = True
            outcome.notes.append(f"[cligym] {self._disk_message(e.args[0])}: the command was interrupted")
            self._interrupt(outcome, exit_code=None)
            return
        if outcome.exit_code is None:
            outcome.timed_out = True
            outcome.notes.append(f"[cligym] command timed out after {timeout:g}s")
            self._interrupt(outcome, exit_code=124)

    def _interrupt(self, outcome: _Outcome, exit_code: int | None) -> None:
        """SIGINT the running command; if it stops within the grace time its result is `exit_code` (None: its
        own status), else the shell is killed and replaced."""
        self._signal("INT")
        code = self._shell.read_until_sentinel(outcome.out, time.monotonic() + _GRACE_SECONDS)
        if code is None:
            outcome.exit_code = None
            self._restart_shell(kill=True)
            outcome.notes.append(
                "[cligym] it did not stop on SIGINT; the shell was killed and a new one started"
            )
            outcome.restarted = True
        else:
            outcome.exit_code = code if exit_code is None else exit_code

    def _give_up_shell(self, outcome: _Outcome, error: Exception) -> None:
        """The container cannot run commands now (stopped, paused, removed; or no shell starts): drop the
        shell, so that the next `run` starts a new one, and say why."""
        if self._pid:
            self._lost_pid = self._pid
        self._close_shell()
        state = self.container_state()
        why = {
            "paused": "the container is paused; no command runs until it is unpaused",
            "removed": "the container was removed",
            "running": f"no shell could be started in the container ({error})",
        }.get(state, f"the container is not running (state: {state})")
        outcome.exit_code, outcome.container_gone = None, True
        outcome.notes.append(f"[cligym] {why}")

    # -- the disk limit ------------------------------------------------------------------------------------

    @property
    def disk_limit(self) -> int | None:
        """Bytes the container may write before a command is interrupted; None or 0: not watched."""
        return self._disk.limit

    def _check_disk(self) -> float:
        """While a command runs: raise _DiskLimitExceeded if a due check finds the container over its limit;
        returns the seconds until the next check."""
        used = self._disk.check()
        if used is not None:
            raise _DiskLimitExceeded(used)
        return self._disk.seconds_left()

    def _check_disk_at_end(self, outcome: _Outcome) -> None:
        """One check as a command ends, if one is due or the command ran long enough to write much."""
        used = self._disk.check(force=time.monotonic() - outcome.started >= _DISK_CHECK_AT_END)
        if used is not None:
            outcome.disk_exceeded = True
            outcome.notes.append(f"[cligym] {self._disk_message(used)}")

    def _disk_message(self, used: int) -> str:
        return (
            f"the container has written {used / 2**20:.0f} MiB to its filesystem, over its disk limit of "
            f"{self.disk_limit / 2**20:.0f} MiB"
        )

    # -- the shell ---------------------------------------------------------------------------------------

    def _start_shell(self, cwd: str | None = None) -> None:
        """Start bash on a new exec socket, set it up and wait for it to report its pid."""
        env = {"TERM": "dumb", "PAGER": "cat", "GIT_PAGER": "cat", **self.env}  # no colors, no pagers waiting
        self._shell = shell = ShellStream(self.container, env)
        setup = _SHELL_SETUP
        for path in dict.fromkeys(p for p in (cwd, self.workdir) if p):
            setup += f"cd -- {quote(path)} 2>/dev/null ||\n"
        if cwd or self.workdir:
            setup += f"{{ echo cannot cd to {quote(self.workdir or cwd)}; exit 97; }}\n"
        out = OutputCap(self.output_cap)
        try:
            shell.send(setup + shell.sentinel_line("$$"))
            pid = shell.read_until_sentinel(out, time.monotonic() + 30)
        except (ShellExited, OSError):
            pid = None
        if pid is None:
            raise CligymError(
                f"could not start a shell in container {self.container.name}: {out.text()[0].strip() or 'no output'}"
            )
        self._pid = pid

    def new_shell(self) -> None:
        """Replace the shell with a fresh one in the last cwd, quietly (e.g. after the tests stopped every
        process in the container); variables exported by earlier commands are lost."""
        self._restart_shell(kill=False)

    def _restart_shell(self, *, kill: bool) -> None:
        if kill:
            self._signal("KILL")
        self._close_shell()
        self._start_shell(self.cwd)

    def _close_shell(self) -> None:
        """Close the shell's stream (the shell itself is not signalled) and note its last cwd."""
        if self._shell is not None:
            self._cwd = self.cwd
            self._shell.close()
            self._shell, self._pid = None, 0

    def _signal(self, signal: str, pid: int | None = None) -> None:
        """Signal the shell's process group (or that of the earlier shell `pid`): the shell and everything the
        command started (unless it left)."""
        containers.signal_process_group(self.container, pid or self._pid, signal)
