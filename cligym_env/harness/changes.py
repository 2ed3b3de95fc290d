"""What an episode changed in a container's file system, and the checks and restores that follow from it.

Changes are found by inode change time (ctime): the kernel sets it on every write, chmod, chown, link and
rename, and no unprivileged process can set it back (that needs CAP_SYS_TIME), unlike mtime (`touch -d`).
Everything is listed and read with the trusted busybox; nothing in the container is asked.

- The project tree (workdir) is put back as it is in the task image: entries changed, added or removed by the
  episode are restored from the image's archive (source, tests, conftest, configs, bytecode caches).
- Bytecode (`*.pyc`) the episode wrote anywhere is deleted: Python recompiles it from the checked sources.
- A changed code file (ELF, script, Python/Perl module, `.pth`, loader config, `entry_points.txt`, ...)
  outside scratch folders must be byte for byte the gold image's file at that path: a repair puts the
  healthy file back; anything else (a wrapper, a hook, a patched test runner) is tampering.
"""

from __future__ import annotations

import io
import posixpath
import re
import tarfile
from dataclasses import dataclass, field
from datetime import datetime

from cligym_env.harness import reference
from cligym_env.runtime.toolkit import HarnessError, quote, run_tool

MAX_CHANGES = 200_000
# Agent scratch space and data that never runs as code; code there is reachable only through variables, .pth
# files, links or loader configs, which are all checked.
EXEMPT = re.compile(
    r"^/(?:tmp|var|dev|proc|sys|run|mnt|media|srv)/"
    r"|^/(?:root|home/[^/]+)/(?!\.local/|\.cargo/|\.config/|\.perl5/|\.pydistutils\.cfg|\.proverc)"
    r"|^/usr/share/(?:doc|man|info|locale|lintian|zoneinfo|i18n|mime)/"
    r"|^/etc/(?!ld\.so\.|python3|perl/|alternatives/)"
)
CODE_SUFFIX = re.compile(
    r"\.(?:py|pth|pyi|so|so\.[0-9.]+|pm|pl|pmc|al|ix|rlib|rmeta|a|sh|bash|zip|egg|whl)$"
    r"|/(?:entry_points\.txt|pyvenv\.cfg|ld\.so\.preload|ld\.so\.conf|ld\.so\.cache|conftest\.py|pytest\.ini"
    r"|tox\.ini|setup\.cfg|pyproject\.toml|\.proverc)$"
    r"|/ld\.so\.conf\.d/|/\.?cargo/config(?:\.toml)?$|^/etc/alternatives/"
)
BIN_DIR = re.compile(r"^(?:/usr)?(?:/local)?/s?bin/[^/]+$|^/opt/.+/bin/[^/]+$|/\.cargo/bin/[^/]+$")
CODE_MAGIC = ("7f454c46",)  # ELF; scripts ("#!") are 2321...
# ctime (nanoseconds) TAB type TAB path, for every entry changed in the last $1 minutes (one file system).
SCAN_SCRIPT = r"""
find / -xdev -cmin "-$1" -exec stat -c '%z	%F	%n' {} + 2>/dev/null
echo "--names-with-line-breaks--"
find / -xdev -cmin "-$1" -name '*
*' 2>/dev/null | head -c 2000
"""


@dataclass
class Change:
    """One entry whose inode changed during the episode."""

    path: str
    kind: str
    """`stat %F`: regular file, directory, symbolic link, ..."""


@dataclass
class Findings:
    """What the integrity checks found and did."""

    violations: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    removed_bytecode: int = 0
    changed: int = 0


def _ctime_ns(text: str) -> int:
    """`2026-12-01 00:09:32.397169494 +0000` -> nanoseconds since the epoch."""
    date, clock, zone = text.split(" ")
    whole, _, frac = clock.partition(".")
    moment = datetime.strptime(f"{date} {whole} {zone}", "%Y-%m-%d %H:%M:%S %z")
    return int(moment.timestamp()) * 10**9 + int((frac or "0").ljust(9, "0")[:9])


def scan_changes(container, since: float, now: float) -> tuple[list[Change], list[str]]:
    """Entries changed after `since` (host epoch seconds), and names with line breaks (never legitimate)."""
    minutes = int((now - since) // 60) + 2
    result = run_tool(container, SCAN_SCRIPT, timeout=300, limit=256 << 20, args=[str(minutes)])
    if result.overflow:
        raise HarnessError("too many changed files to check")
    text = result.output.decode("utf-8", errors="replace")
    listing, _, odd = text.partition("--names-with-line-breaks--\n")
    cutoff = int(since * 1e9)
    changes = []
    for line in listing.splitlines():
        parts = line.split("\t", 2)
        if len(parts) != 3:
            continue
        try:
            stamp = _ctime_ns(parts[0])
        except ValueError:
            continue
        if stamp >= cutoff:
            changes.append(Change(parts[2], parts[1]))
    if len(changes) > MAX_CHANGES:
        raise HarnessError(f"{len(changes)} changed files (at most {MAX_CHANGES} are checked)")
    return changes, [n for n in odd.split("\n\n") if n.strip()]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _ancestors(path: str, itself: bool = False) -> list[str]:
    """The folders above `path` (and `path` itself when `itself`)."""
    parts = path.rstrip("/").split("/")
    out = ["/".join(parts[:i]) or "/" for i in range(1, len(parts))]
    return out + [path] if itself else out


def is_code(path: str, magic: str) -> bool:
    """Whether a changed file at `path` (first bytes `magic`, hex) is code the test run could load or run."""
    return bool(
        CODE_SUFFIX.search(path)
        or BIN_DIR.search(path)
        or magic.startswith(CODE_MAGIC)
        or magic.startswith("2321")
    )


def check_code(container, changes: list[Change], gold_image: str, workdir: str, findings: Findings) -> None:
    """Tampering: a changed code file outside scratch space whose bytes are not the gold's at that path."""
    candidates = [
        c.path
        for c in changes
        if c.kind in ("regular file", "regular empty file", "symbolic link")
        and not _inside(c.path, workdir)
        and not EXEMPT.search(c.path)
        and not c.path.endswith(".pyc")
    ]
    if not candidates:
        return
    current = reference.hash_files(container, candidates)
    code = [p for p in candidates if is_code(p, current.get(p, (None, ""))[1])]
    if not code:
        return
    healthy = reference.gold_hashes(gold_image, code)
    for path in code:
        now, then = current.get(path, (None, ""))[0], healthy.get(path)
        if now != then and now is not None:
            what = "added" if then is None else "changed"
            findings.violations.append(f"{path}: {what}, and not the healthy environment's file")


def remove_bytecode(container, changes: list[Change], workdir: str, findings: Findings) -> None:
    """Delete every .pyc the episode wrote outside the workdir (the workdir is restored whole)."""
    stale = [c.path for c in changes if c.path.endswith(".pyc") and not _inside(c.path, workdir)]
    _remove(container, stale, "rm -f")
    findings.removed_bytecode = len(stale)


def _remove(container, paths: list[str], rm: str) -> None:
    """Run `rm` (with its flags) on `paths` with the trusted busybox, a few thousand paths a call."""
    for start in range(0, len(paths), 2000):
        run_tool(container, f'{rm} -- "$@"', timeout=300, args=paths[start : start + 2000])


def restore_workdir(container, changes: list[Change], image: str, workdir: str, findings: Findings) -> None:
    """Put the project tree back as `image` has it: remove what was added or changed, re-extract the rest."""
    archive = reference.workdir_archive(image, workdir)
    parent = posixpath.dirname(workdir.rstrip("/"))
    with tarfile.open(archive) as tar:
        members = {posixpath.join(parent, m.name.rstrip("/")): m for m in tar.getmembers()}
        _restore(container, changes, workdir, parent, tar, members, findings)


def _restore(container, changes, workdir, parent, tar, members, findings: Findings) -> None:
    """`restore_workdir` with the image's archive open: `members` by their path in the container."""
    listing = run_tool(container, f"find {quote(workdir)} -xdev", timeout=300, limit=256 << 20)
    present = set(listing.output.decode("utf-8", errors="replace").splitlines())
    kinds = {c.path: c.kind for c in changes if _inside(c.path, workdir)}
    changed = set(kinds)
    added = {p for p in present - members.keys() if _inside(p, workdir)}
    missing = set(members) - present
    # A changed entry is replaced unless it is a directory that is still a directory (then only its mode).
    replace = {p for p in changed & members.keys() if not (members[p].isdir() and kinds[p] == "directory")}
    root = workdir.rstrip("/") or "/"
    if root in replace:  # the workdir itself replaced (a link, a file): rebuild it whole
        replace, missing = {root}, set(members)
    # Remove outermost added/replaced entries (rm -rf takes their subtrees with them).
    chosen: set[str] = set()
    for path in sorted(added | replace):
        if not any(a in chosen for a in _ancestors(path)):
            chosen.add(path)
    outermost = sorted(chosen)
    _remove(container, outermost, "rm -rf")
    dirs = {p for p in changed & members.keys() if members[p].isdir()}
    wanted = missing | replace | dirs | {p for p in members if any(a in chosen for a in _ancestors(p, True))}
    if not wanted:
        return
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as out:
        for path, member in members.items():  # archive order: folders before what they hold
            if path in wanted:
                out.addfile(member, tar.extractfile(member) if member.isfile() else None)
    if not container.put_archive(parent or "/", payload.getvalue()):
        raise HarnessError(f"could not restore {workdir}")
    findings.restored = sorted(p for p in (replace | added | missing) if p != root)
