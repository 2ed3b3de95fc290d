"""No forensic shortcuts: a broken image must not say when or where it was broken.

A plain `RUN` leaves three kinds of trace: every file it writes gets a new mtime (so `find / -newer /testbed`
lists exactly the broken files), package managers append to their logs and caches, and editors' backups stay
behind. The break commands are therefore wrapped: `begin` records the mtime of every file and saves the package
managers' logs; `end` removes backups and caches the break created, restores the logs, and sets every changed
path's mtime back to what it was (a new file gets its folder's old mtime). Changed Python sources are
recompiled first, so their bytecode matches the restored mtime rather than a stale or a missing `.pyc`.

ctime cannot be set back (the kernel sets it), so `end` also refreshes the ctime of a seeded random sample of
unrelated small system files: `find -cnewer` then lists a crowd, not the fault. What remains is what a real
administrator has to hand: package checksums (`dpkg --verify`, pip's RECORD), configuration and reasoning.

Both are plain POSIX `sh` with GNU find/touch/awk (every gold image has them), one line each, so they join the
task's single `RUN` (see `cligym_env.task.dockerfile_text`).
"""

from __future__ import annotations

import re

from cligym_env.task import HYGIENE_STATE

STATE = HYGIENE_STATE
LOGS = ("/var/log/dpkg.log", "/var/log/apt/history.log", "/var/log/apt/term.log", "/var/log/apt/eipp.log.xz",
        "/var/log/alternatives.log")  # fmt: skip
# New files matching these are leftovers of a break (editor or package-manager backups, download caches).
LEFTOVERS = r"-name '*.dpkg-old' -o -name '*.dpkg-new' -o -name '*.dpkg-dist' -o -name '*.bak' -o -name '*.orig' " \
            r"-o -name '*~' -o -path '/root/.cache/pip*' -o -path '/var/cache/apt/archives/*.deb' " \
            r"-o -path '/var/backups/*' -o -path /root/.cache"  # fmt: skip
PRUNE = r"\( -path /proc -o -path /sys -o -path /dev -o -path " + STATE + r" \) -prune -o"
DECOY_ROOTS = "/usr/lib /usr/share /etc /opt"
DECOY_RATE = 0.0025
"""Share of the small files under DECOY_ROOTS whose ctime is refreshed (about 100 files on a gold image: few enough that
the broken image's layer stays a quick diff, see runtime/layers.py MAX_FILES)."""


def begin() -> str:
    """The command that runs before the break commands."""
    logs = " ".join(LOGS)
    return (
        "{ "
        + (
            f"rt=$(find /run -maxdepth 0 -printf '%T@'); mkdir -p {STATE}/logs && echo \"$rt\" > {STATE}/run-mtime && "
            f"touch {STATE}/mark && "
            f"find / -xdev {PRUNE} -printf '%T@\\t%p\\n' > {STATE}/mtimes 2>/dev/null; "
            f'for f in {logs}; do [ -f "$f" ] && cp -p "$f" {STATE}/logs/$(echo "$f" | tr / _); done; true'
        )
        + "; }"
    )


def _restore() -> str:
    """Set every path written since the mark back to its recorded mtime (a new path: its folder's old one)."""
    return (
        f"find / -xdev {PRUNE} -newer {STATE}/mark -print > {STATE}/changed 2>/dev/null; "
        f"awk -F'\\t' 'NR==FNR{{t[$2]=$1;next}} {{p=$0; if (p in t) print t[p] \"\\t\" p; "
        'else {d=p; sub("/[^/]*$","",d); if (d=="") d="/"; if (d in t) print t[d] "\\t" p}}\' '
        f"{STATE}/mtimes {STATE}/changed > {STATE}/restore; "
        f'while IFS="$tab" read -r t p; do [ -e "$p" ] || [ -L "$p" ] && touch -h -m -d "@$t" "$p"; '
        f"done < {STATE}/restore; "
    )


def end(seed: int) -> str:
    """The command that runs after the break commands (`seed` picks the decoy files)."""
    logs = " ".join(LOGS)
    return (
        "{ "
        + (
            "tab=$(printf '\\t'); "
            # 1. Leftovers that did not exist before go.
            f"find / -xdev {PRUNE} -newer {STATE}/mark \\( {LEFTOVERS} \\) -print 2>/dev/null "
            f"| awk -F'\\t' 'NR==FNR{{old[$2]=1;next}} !($0 in old)' {STATE}/mtimes - "
            '| while IFS= read -r p; do rm -rf "$p"; done; '
            # 2. Logs as they were (a log the break created is removed).
            f'for f in {logs}; do s={STATE}/logs/$(echo "$f" | tr / _); '
            'if [ -f "$s" ]; then cat "$s" > "$f"; else rm -f "$f"; fi; done; '
            # 3. mtimes back, then changed Python sources recompiled: their bytecode records the restored mtime
            # (a stale .pyc would hide the change, a missing one would point at it).
            + _restore()
            + f"py=$(command -v python3 || command -v python); if [ -n \"$py\" ]; then grep '\\.py$' {STATE}/changed "
            '| while IFS= read -r p; do [ -f "$p" ] && "$py" -c \'import py_compile,sys; '
            'py_compile.compile(sys.argv[1], doraise=False)\' "$p" 2>/dev/null; done; fi; '
            # 4. Decoys: refresh the ctime (and nothing else) of a seeded sample of small system files.
            f"find {DECOY_ROOTS} -xdev -type f -size -32k 2>/dev/null | sort "
            f"| awk -v s={seed % 1000003} 'BEGIN{{srand(s)}} rand()<{DECOY_RATE}' "
            '| while IFS= read -r f; do touch -c -m -r "$f" "$f"; done; '
            # 5. Again for what steps 3-4 wrote (bytecode, folders that copy-on-write touched).
            + _restore()
            # 6. Gone without a trace, and /run's own mtime back.
            + f"rt=$(cat {STATE}/run-mtime); rm -rf {STATE}; "
            '[ -n "$rt" ] && touch -m -d "@$rt" /run; true'
        )
        + "; }"
    )


def conceal(break_commands: list[str], seed: int) -> list[str]:
    """`break_commands` wrapped in `begin` and `end`, for the task's Dockerfile."""
    return [begin(), *break_commands, end(seed)]


NOTE = "The RUN's first and last commands hide when and where it changed things (cligym_env/inversion/hygiene.py)."


def concealed_dockerfile(
    break_commands: list[str], seed: int, title: str = "", before: list[str] | tuple[str, ...] = ()
) -> str:
    """The task Dockerfile: the gold image, the instructions `before` (e.g. a `COPY` of files the break
    needs), then `break_commands` wrapped by `conceal` in one `RUN`."""
    from cligym_env.task import dockerfile_text

    comment = f"{title}\n# {NOTE}" if title else NOTE
    return dockerfile_text([*before, *conceal(break_commands, seed)], comment=comment)


JOIN = " \\\n && "  # how `dockerfile_text` joins the shell lines of one RUN


def conceal_dockerfile(text: str, seed: int) -> str | None:
    """A task Dockerfile of `RUN`s only (what the inverters write) with its commands wrapped in `begin`/`end`, or
    re-wrapped when an older version of them is there; None when it is not of that shape (hand-written
    Dockerfiles with other instructions are left as they are) or is wrapped in the current version already."""
    lines = text.split("\n")
    start = next((i for i, line in enumerate(lines) if line.startswith("RUN ")), None)
    if start is None:
        return None
    head = lines[:start]
    if [ln for ln in head if ln.strip() and not ln.startswith(("#", "ARG ", "FROM "))]:
        return None
    body = "\n".join(lines[start:]).rstrip("\n")[len("RUN ") :]
    if any(f"\n{word} " in body for word in ("COPY", "ENV", "USER", "WORKDIR")):
        return None
    # Older sets wrote one RUN per command: they join into one shell, as `dockerfile_text` writes them now.
    commands = [c for run in body.split("\nRUN ") for c in run.split(JOIN)]
    if STATE in body:  # wrapped already: unwrap, keeping its seed
        found = re.search(r"-v s=(\d+)", commands[-1])
        seed = int(found.group(1)) if found else seed
        commands = commands[1:-1]
    title = head[0][2:] if head and head[0].startswith("# ") and head[0][2:] != NOTE else ""
    text_now = concealed_dockerfile(commands, seed, title)
    return None if text_now == text else text_now
