"""`heuristic`: diagnoses by pattern and repairs by recipe, the difficulty yardstick of the inversion engine.

It plays like a careful person with a checklist: run the tests, read the failure, apply the matching repair,
run the tests again; when the failure names nothing it recognises, run a few integrity probes (Python
distributions with missing files or wheels not installed, `dpkg --verify`, executables without an x bit, suspicious
environment variables and resource limits in login-shell files, files that differ from their distribution's
RECORD hashes, startup hooks no distribution installed, a loader preload list) and repair what they report. It stops when the tests pass, when
nothing is left to try, or after `max_repairs` repairs, and submits.

The policy keeps no state between calls: what it has tried is read back from the conversation, so one instance
can play any number of episodes and the same conversation always gives the same next command.
"""

from __future__ import annotations

import re
import shlex

from agents.prompt import format_reply, parse_command, submit_reply
from agents.protocol import SUBMIT, Action

# Import names whose distribution is named differently (the rest are matched against the wheelhouse).
MODULE_TO_DIST = {
    "yaml": "PyYAML",
    "PIL": "Pillow",
    "dateutil": "python-dateutil",
    "text_unidecode": "text-unidecode",
    "sklearn": "scikit-learn",
    "cv2": "opencv-python",
    "bs4": "beautifulsoup4",
    "attr": "attrs",
    "google.protobuf": "protobuf",
    "pkg_resources": "setuptools",
    "_pytest": "pytest",
    "magic": "python-magic",
    "jwt": "PyJWT",
    "dotenv": "python-dotenv",
    "slugify": "python-slugify",
    "serial": "pyserial",
    "typing_extensions": "typing-extensions",
}
# Variables that break Python or the loader when set by someone who should not have.
SUSPECT_VARS = ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "PIP_NO_INDEX")
SHELL_FILES = (
    "/etc/profile /etc/profile.d/*.sh /etc/environment /etc/bash.bashrc /root/.bashrc /root/.profile"
)
WHEELHOUSE = "/opt/wheelhouse"
# Skip reasons that mean "something the tests need is gone", not "this test does not apply here".
SKIP_SMELLS = "requires|unavailable|not installed|not available|missing|no module|could not import|cannot import|not found"

PROBE_PYTHON = """python - <<'PY'
import importlib.metadata as md, os, re, base64, hashlib, glob, sysconfig
installed, owned = {}, set()
for d in md.distributions():
    name = d.metadata["Name"]
    installed[re.sub(r"[-_.]+", "-", name).lower()] = name
    owned.update(os.path.realpath(d.locate_file(f)) for f in d.files or [])
    missing = [str(f) for f in (d.files or []) if not str(f).endswith(".pyc") and not os.path.exists(d.locate_file(f))]
    if missing:
        print("MISSING_FILES", name, missing[0])
        continue
    for f in d.files or []:  # RECORD's hashes: a file that is there but not what the wheel installed
        if f.hash and f.hash.mode == "sha256" and not str(f).endswith(".pyc"):
            try:
                data = open(d.locate_file(f), "rb").read()
            except OSError:
                continue
            if base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode() != f.hash.value:
                print("CHANGED_FILES", name, f)
                break
for pth in glob.glob(os.path.join(sysconfig.get_paths()["purelib"], "*.pth")):
    if os.path.realpath(pth) not in owned:
        print("STRAY_PTH", pth)
wheelhouse = "WHEELHOUSE"
for w in sorted(os.listdir(wheelhouse)) if os.path.isdir(wheelhouse) else []:
    dist = re.sub(r"[-_.]+", "-", w.split("-")[0]).lower()
    if w.endswith((".whl", ".tar.gz")) and dist not in installed:
        print("NOT_INSTALLED", w.split("-")[0])
PY""".replace("WHEELHOUSE", WHEELHOUSE)
PROBE_DPKG = "dpkg --verify 2>/dev/null | grep -v ' c /' | head -n 40; echo dpkg-verify-done"
PROBE_EXEC = (
    "find /usr/bin /usr/sbin /bin /sbin /usr/local/bin /opt/venv/bin -maxdepth 1 -type f ! -perm -u+x "
    "2>/dev/null | sed 's/^/NOT_EXECUTABLE /' | head -n 40; "
    "for f in $(command -v python python3); do p=$(readlink -f $f); [ -x $p ] || echo NOT_EXECUTABLE $p; done; "
    "[ -s /etc/ld.so.preload ] && echo PRELOAD_FILE /etc/ld.so.preload; "
    "echo exec-probe-done"
)
PROBE_ENV = (
    f"bash -lc env 2>&1 | grep -E '^({'|'.join(SUSPECT_VARS)}|LANG|LC_ALL|TZ|PATH)=' ; "
    f"grep -nsE '({'|'.join(SUSPECT_VARS)}|LANG|LC_|TZ|PATH)=|ulimit ' {SHELL_FILES}; echo env-probe-done"
)
PROBES = (PROBE_PYTHON, PROBE_DPKG, PROBE_EXEC, PROBE_ENV)


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _history(messages: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(command, observation) pairs of this episode so far, read back from the conversation."""
    pairs = []
    for i, m in enumerate(messages):
        if m["role"] == "assistant":
            command = parse_command(m["content"]) or ""
            following = messages[i + 1]["content"] if i + 1 < len(messages) else ""
            pairs.append((command, following))
    return pairs


def suite_passed(observation: str) -> bool:
    """True when a test run's output says everything passed (pytest summary or a zero exit code, unless the
    output of prove, cargo or automake reports failures)."""
    if re.search(r"\b\d+ (failed|errors?)\b|\bERROR\b|Traceback|Permission denied|not found", observation):
        return False
    # prove, cargo and automake say so in words (behind a `| tee` the exit code is tee's)
    if re.search(
        r"^Result: FAIL|^Failed \d+/\d+|test result: FAILED|^# (FAIL|ERROR): +[1-9]", observation, re.M
    ):
        return False
    if re.search(rf"^SKIPPED \[\d+\] .*({SKIP_SMELLS})", observation, re.M | re.I):
        return False  # tests skipped because something they need is gone (e.g. a C extension)
    return bool(re.search(r"\b\d+ passed\b", observation)) or observation.startswith("[exit code 0]")


class HeuristicPolicy:
    """Pattern-matching repair agent; `test_command` is how it runs the tests (the task's own command).

    Example:
        >>> policy = HeuristicPolicy("python -m pytest -q tests")
        >>> policy.act(initial_messages("tests fail")).command
        'python -m pytest -q tests -x --tb=short -rs'
    """

    name = "heuristic"

    def __init__(
        self, test_command: str = "python -m pytest -q", max_repairs: int = 6, seed: int = 0
    ) -> None:
        quick = " -x --tb=short -rs" if "pytest" in test_command else ""
        self.test_command = test_command.strip() + quick
        self.max_repairs = max_repairs
        self.seed = seed  # the policy is deterministic; the seed is kept for the trajectory record

    def act(self, messages: list[dict[str, str]]) -> Action:
        history = _history(messages)
        done = {command for command, _ in history}
        test_runs = [obs for command, obs in history if command == self.test_command]
        repairs = [c for c, _ in history if c != self.test_command and c not in PROBES]
        if not test_runs:
            return Action(
                self.test_command, format_reply("First, see how the tests fail.", self.test_command)
            )
        last_command, last_obs = history[-1]
        if last_command == self.test_command and suite_passed(last_obs):
            return Action(SUBMIT, submit_reply("The tests pass now."))
        if len(repairs) >= self.max_repairs:
            return Action(SUBMIT, submit_reply("Out of repair attempts; submitting what I have."))
        if last_command not in (self.test_command, *PROBES) and history:
            return Action(
                self.test_command, format_reply("Check whether that repair worked.", self.test_command)
            )
        # Repairs suggested by everything seen since the last repair (the latest test run and the probes).
        since = [obs for c, obs in reversed(history) if c in (self.test_command, *PROBES)]
        for text in since[:5]:
            for thought, command in self._repairs_for(text, messages):
                if command not in done:
                    return Action(command, format_reply(thought, command))
        for probe in PROBES:
            if probe not in done:
                return Action(probe, format_reply("The failure names no obvious cause; run a probe.", probe))
        return Action(SUBMIT, submit_reply("Nothing else I know to try; submitting."))

    def _repairs_for(self, text: str, messages: list[dict[str, str]]) -> list[tuple[str, str]]:
        """Candidate (thought, command) repairs for the failures visible in `text`, most specific first."""
        found: list[tuple[str, str]] = []
        modules = r"No module named '([\w.]+)'|cannot import name '\w+' from '([\w.]+)'|requires ([\w.-]+) (?:lib|module|package)"
        for match in re.finditer(modules, text):
            module = match.group(1) or match.group(2) or match.group(3)
            dist = self._dist_for(module, messages)
            found.append(
                (f"Python cannot import `{module}`; (re)install {dist} from the wheelhouse.", _pip_fix(dist))
            )
        for match in re.finditer(r"^MISSING_FILES (\S+)", text, re.M):
            found.append((f"{match.group(1)} lost installed files; reinstall it.", _pip_fix(match.group(1))))
        for match in re.finditer(r"^CHANGED_FILES (\S+)", text, re.M):
            found.append(
                (f"Files of {match.group(1)} differ from its RECORD; reinstall it.", _pip_fix(match.group(1)))
            )
        for match in re.finditer(r"^STRAY_PTH (\S+)", text, re.M):
            found.append(
                ("A startup hook that no package installed.", f"rm -f {shlex.quote(match.group(1))}")
            )
        if re.search(r"^PRELOAD_FILE ", text, re.M):
            found.append(("The loader preloads a library for every program.", "rm -f /etc/ld.so.preload"))
        if re.search(r"^[^:\n]*:\d+:\s*ulimit ", text, re.M):
            found.append(("A login file lowers a resource limit.", _comment_out("ulimit ")))
        for match in re.finditer(r"^NOT_INSTALLED (\S+)", text, re.M):
            found.append(
                (f"{match.group(1)} is in the wheelhouse but not installed.", f"pip install {match.group(1)}")
            )
        for match in re.finditer(r"^NOT_EXECUTABLE (\S+)", text, re.M):
            found.append(("This executable lost its x bit.", f"chmod a+rx {shlex.quote(match.group(1))}"))
        for match in re.finditer(r"(/[\w./+-]+)'?: Permission denied|Permission denied: '(/[^']+)'", text):
            found.append(
                (
                    "Restore the permissions of the path that is refused.",
                    _chmod_fix(match.group(1) or match.group(2)),
                )
            )
        for match in re.finditer(r"^missing\s+(?:c\s+)?(/\S+)|^\?\?5\S*\s+(?:c\s+)?(/\S+)", text, re.M):
            found.append(
                (
                    "A file of a Debian package is gone or changed.",
                    _apt_fix_path(match.group(1) or match.group(2)),
                )
            )
        for match in re.finditer(r"([\w.+-]+\.so(?:\.[\d.]+)?): cannot open shared object file", text):
            found.append(
                ("A shared library is missing; reinstall its package.", _apt_fix_path("*/" + match.group(1)))
            )
        for match in re.finditer(
            r"(?:bash: (?:line \d+: )?|sh: \d+: )([\w.+-]+): (?:command )?not found|"
            r"No such file or directory: '([\w.+-]+)'|executable \W?([\w.+-]+)\W? not found",
            text,
        ):
            name = match.group(1) or match.group(2) or match.group(3)
            found.append(
                (f"`{name}` is not on the system; reinstall the package that ships it.", _apt_fix_exe(name))
            )
        for match in re.finditer(r"No such file or directory: '(/(?:usr|etc|lib)/[^']+)'", text):
            found.append(
                ("A system file is gone; reinstall the package that ships it.", _apt_fix_path(match.group(1)))
            )
        if re.search(r"ZoneInfoNotFoundError|UnknownTimeZoneError|No time zone found|zoneinfo", text):
            found.append(("Time zone data is broken.", "apt-get install --reinstall -y tzdata"))
        if re.search(
            r"unsupported locale setting|locale\.Error|Setting locale failed|LC_ALL: cannot change", text
        ):
            found.append(("The locale settings are broken.", _unset_fix("LANG|LC_ALL|LC_CTYPE")))
        for var in SUSPECT_VARS:
            if re.search(rf"^(?:[^:\n]*:\d+:)?\s*(?:export\s+)?{var}=\S", text, re.M):
                found.append((f"{var} is set where it should not be.", _unset_fix(var)))
        return found

    def _dist_for(self, module: str, messages: list[dict[str, str]]) -> str:
        """The distribution that provides `module`: the table, else a wheelhouse file of that name."""
        top = module.split(".")[0]
        if module in MODULE_TO_DIST or top in MODULE_TO_DIST:
            return MODULE_TO_DIST.get(module) or MODULE_TO_DIST[top]
        wheels = set(re.findall(r"^NOT_INSTALLED (\S+)", "\n".join(m["content"] for m in messages), re.M))
        for wheel in sorted(wheels):
            if _norm(wheel) in (_norm(top), _norm("python-" + top), _norm("py" + top)):
                return wheel
        return top


def _pip_fix(dist: str) -> str:
    d = shlex.quote(dist)
    return f"pip show {d} >/dev/null 2>&1 && pip install --force-reinstall --no-deps {d} || pip install {d}"


def _chmod_fix(path: str) -> str:
    """Give a refused path back its usual mode: a+rx for directories and executables, a+r for other files."""
    p = shlex.quote(path)
    return (
        f'p=$(readlink -f {p}); if [ -d "$p" ] || case "$p" in */bin/*|*/sbin/*|*.so*) true;; *) false;; esac '
        f'|| head -c4 "$p" | grep -qa -e ELF -e "#!"; then chmod a+rx "$p"; else chmod u+rw,a+r "$p"; fi; ls -l "$p"'
    )


def _apt_fix_path(pattern: str) -> str:
    return (
        f"pkg=$(dpkg -S {shlex.quote(pattern)} 2>/dev/null | head -n1 | cut -d: -f1); echo package: $pkg; "
        '[ -n "$pkg" ] && apt-get install --reinstall -y "$pkg"'
    )


def _apt_fix_exe(name: str) -> str:
    return _apt_fix_path(f"*bin/{name}")


def _comment_out(pattern: str) -> str:
    """Comment out the lines of the login-shell files that start with `pattern`."""
    return f"sed -i -E '/^\\s*{pattern}/s/^/# /' {SHELL_FILES} 2>/dev/null; grep -nsE '{pattern}' {SHELL_FILES}; true"


def _unset_fix(var_regex: str) -> str:
    """Comment out the lines of the login-shell files that set the variable(s), and unset them here."""
    names = var_regex.replace("|", " ")
    return (
        f"sed -i -E '/^\\s*(export\\s+)?({var_regex})=/s/^/# /' {SHELL_FILES} 2>/dev/null; unset {names}; "
        f"grep -nsE '({var_regex})=' {SHELL_FILES}; true"
    )
