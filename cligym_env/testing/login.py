"""The login environment a test command gets, captured as data rather than run as code.

Environment faults live in `/etc/profile.d`, so test commands keep login-shell semantics: the container's
`bash -l` reads the profile, then hands over to the trusted busybox, which prints the variables it was given,
its resource limits and its umask. The test command then runs in a clean busybox shell with exactly those
values: shell functions, aliases, traps and `BASH_ENV` hooks from the profile never run around it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from cligym_env.runtime.toolkit import BUSYBOX, HarnessError, quote, run_tool

_MARK = "\x00--cligym-limits--\x00"
# Busybox `ulimit` flag and unit (bytes per unit; 0: a count) for each line of /proc/<pid>/limits.
LIMITS = {
    "Max cpu time": ("t", 0),
    "Max file size": ("f", 512),
    "Max data size": ("d", 1024),
    "Max stack size": ("s", 1024),
    "Max core file size": ("c", 512),
    "Max processes": ("u", 0),
    "Max open files": ("n", 0),
    "Max locked memory": ("l", 1024),
    "Max address space": ("v", 1024),
}
MAX_ENVIRONMENT_BYTES = 64 << 10


@dataclass
class LoginEnvironment:
    """Variables, soft limits, umask and shell functions of a login shell in one container."""

    variables: dict[str, str] = field(default_factory=dict)
    limits: dict[str, str] = field(default_factory=dict)
    """`/proc/<pid>/limits` name -> soft value as written there ("unlimited" or a number)."""
    umask: str = "0022"
    functions: list[str] = field(default_factory=list)
    """Shell functions the login shell defines (they never reach the test command; listed to report them)."""

    def to_json(self) -> dict:
        return {
            "variables": self.variables,
            "limits": self.limits,
            "umask": self.umask,
            "functions": self.functions,
        }

    @classmethod
    def from_json(cls, data: dict) -> LoginEnvironment:
        return cls(**data)

    def script_prelude(self) -> str:
        """Busybox sh lines that set these limits and this umask."""
        lines = [f"umask {self.umask}"]
        for name, value in self.limits.items():
            if name not in LIMITS:
                continue
            flag, unit = LIMITS[name]
            amount = value if value == "unlimited" or not unit else str(max(1, int(value) // unit))
            lines.append(f"ulimit -S -{flag} {amount} 2>/dev/null")
        return "\n".join(lines)


_MARK_PRINTF = _MARK.replace("\x00", "\\0")  # as a printf format
_DUMP = (
    f"{BUSYBOX} cat /proc/$$/environ; {BUSYBOX} printf '{_MARK_PRINTF}'; "
    f"{BUSYBOX} cat /proc/$$/limits; {BUSYBOX} grep Umask /proc/$$/status"
)


def capture_login_environment(container, workdir: str, timeout: float = 60) -> LoginEnvironment:
    """Run the container's `bash -l` in `workdir` and read what it would hand a test command.

    Raises HarnessError when the login shell does not get as far as the hand-over (bash missing, the profile
    exits or hangs): then no test command could have run either.
    """
    login = (
        f"builtin declare -F 2>/dev/null; builtin printf '\\0'; builtin exec {BUSYBOX} sh -c {quote(_DUMP)}"
    )
    argv = [BUSYBOX, "timeout", "-s", "KILL", str(int(timeout)), "bash", "-l", "-c", login]
    result = run_tool(container, "", timeout=timeout, argv=argv, workdir=workdir, login=True)
    text = result.output.decode("utf-8", errors="replace")
    if result.overflow or _MARK not in text:
        shown = text.replace("\x00", " ").strip()[-300:]
        raise HarnessError(
            "the login shell (bash -l) did not start the test command"
            + (f" (exit code {result.exit_code})" if result.exit_code is not None else "")
            + (f": {shown}" if shown else "")
        )
    head, _, tail = text.partition(_MARK)
    functions_text, _, environ = head.partition("\x00")
    variables = {}
    for item in environ.split("\x00"):
        name, sep, value = item.partition("=")
        if sep and name:
            variables[name] = value
    if len(environ) > MAX_ENVIRONMENT_BYTES:
        raise HarnessError(f"the login environment is {len(environ)} bytes (at most {MAX_ENVIRONMENT_BYTES})")
    functions = sorted(set(re.findall(r"^declare -f(?:x)? (\S+)$", functions_text, re.M)))
    limits = {}
    for line in tail.splitlines():
        match = re.match(r"(Max [a-z ]+?)\s{2,}(\S+)\s+(\S+)", line)
        if match:
            limits[match[1]] = match[2]
    umask = re.search(r"Umask:\s*([0-7]+)", tail)
    return LoginEnvironment(variables, limits, umask[1] if umask else "0022", functions)
