"""The fault-family interface: find targets in a gold environment, break one, say how to repair it."""

from __future__ import annotations

import dataclasses
import random
import shlex
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from cligym_env.inversion.probe import Probe
from cligym_env.inversion.tracing import CORE_STDLIB, Coverage, suite_coverage

Shell = Callable[[str], str]


@dataclass(frozen=True)
class Fault:
    """One concrete breakage: the commands that do it and the commands that undo it."""

    family: str
    category: str
    target: str
    """What is broken (a distribution, a path, a setting): with the family, the fault's identity."""
    break_commands: tuple[str, ...]
    repair_commands: tuple[str, ...]
    symptom: str
    """What a user would notice, phrased without the cause or the fix (used as the hint)."""
    leak_terms: tuple[str, ...] = ()
    """Strings a problem statement must not contain: they would give the fix away."""
    hints: tuple[str, ...] = ()
    """Other phrasings of `symptom`, so that hints vary within a family (the writer picks one of all)."""
    files: tuple[tuple[str, str], ...] = ()
    """Host files the break needs in the image, as (host path, path in the build context's `files/`)."""
    watch: tuple[str, ...] = ()
    """Tests (pytest node ids) known to reach what the fault changes: re-run first, alone, to refuse a fault
    that flips nothing in seconds instead of a whole suite run (see `tracing.screen`)."""

    @property
    def signature(self) -> str:
        return f"{self.family}:{self.target}"


@dataclass
class Context:
    """What a family may look at: the probe, and read-only shell access to a pristine gold container."""

    probe: Probe
    sh: Shell
    _owners: dict[str, str] = field(default_factory=dict)
    texts: dict[str, str | None] = field(default_factory=dict)
    """Files read from the pristine container, by path (None: absent or too large); see `source._read_files`."""
    _coverage: Coverage | None = None
    _files_read: frozenset[str] | None = None

    def coverage(self) -> Coverage:
        """The gold suite's traced run (which tests reach which library line, file and program), read once."""
        if self._coverage is None:
            self._coverage = suite_coverage(self.probe, untraced=CORE_STDLIB)
        return self._coverage

    def watch_opened(self, fault: Fault, *keys: str) -> Fault:
        """`fault` watching the tests that opened (or ran) any of `keys` in the traced suite."""
        watch: dict[str, None] = {}
        for key in keys:
            watch.update(dict.fromkeys(self.coverage().opened(key)[1]))
        return dataclasses.replace(fault, watch=tuple(watch)) if watch else fault

    def tests_use(self, *keys: str) -> bool:
        """Whether some test opened, ran or raised any of `keys` (`event:socket.connect`, `exec:git`, a path) in
        the traced suite; True when the suite was not traced (nothing is known)."""
        coverage = self.coverage()
        return not coverage.tests or any(coverage.opened(key)[0] > 0 for key in keys)

    def aimed_at_file(self, key: str, max_share: float = 0.5) -> bool:
        """Whether a fault on `key` (a path, or `exec:PROGRAM`) can fail some tests but not sweep the suite: some
        tests opened it, at most `max_share` of them, and nothing outside a test did. A file the traced run never
        opened from Python counts when the strace probe saw the tests read it (C code: libc, the loader); when
        the suite was not traced nothing is known, and every key counts."""
        coverage = self.coverage()
        if not coverage.tests:
            return True
        count, _ids, outside = coverage.opened(key)
        if count == 0 and not outside:
            if self._files_read is None:
                self._files_read = frozenset(self.probe.runtime.get("files_read") or ())
            return key in self._files_read
        return 0 < count <= max_share * len(coverage.tests) and not outside

    def owner(self, path: str) -> str | None:
        """The Debian package that ships `path` (dpkg -S; merged-/usr files are known under either prefix)."""
        if path not in self._owners:
            alt = (
                path.replace("/usr/lib/", "/lib/", 1)
                if path.startswith("/usr/lib/")
                else path.replace("/lib/", "/usr/lib/", 1)
            )
            out = ""
            for candidate in dict.fromkeys([path, alt]):
                out = self.sh(f"dpkg -S {shlex.quote(candidate)} 2>/dev/null | head -1")
                if ":" in out:
                    break
            self._owners[path] = out.split(":", 1)[0].strip() if ":" in out else ""
        return self._owners[path] or None


class FaultFamily(ABC):
    """A kind of environment fault. Subclasses set the class attributes and implement two methods."""

    name: ClassVar[str]
    category: ClassVar[str]
    direction: ClassVar[str]
    """A disruption direction, in words (also shown to the LLM inverter)."""
    languages: ClassVar[tuple[str, ...]] = ("python",)
    """Gold languages the family applies to (`*` for any)."""

    def applies_to(self, probe: Probe, language: str) -> bool:
        return "*" in self.languages or language in self.languages

    @abstractmethod
    def targets(self, ctx: Context) -> list[str]:
        """Everything this family could break in the environment (deterministic order)."""

    @abstractmethod
    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        """The fault for `target`, or None if it cannot be made here (e.g. no package owns the file)."""

    def deleted_packaged_file(self, ctx: Context, target: str, symptom: str) -> Fault | None:
        """Delete a file a Debian package ships; the repair reinstalls the package (None if no package owns it)."""
        package = ctx.owner(target)
        if not package:
            return None
        leaks = [target, basename(target), f"install --reinstall -y {package}", f"install {package}"]
        return self.make(target, [f"rm -f {q(target)}"], [reinstall_deb(package)], symptom, leaks)

    SYMPTOMS: ClassVar[tuple[str, ...]] = ()
    """How a user would describe the symptom, in several phrasings (the first is the fault's `symptom`)."""

    def make_fault(self, target: str, breaks: list[str], repairs: list[str], leaks: list[str]) -> Fault:
        """`make` with the class's `SYMPTOMS`: the first as the symptom, the others as alternative hints."""
        return self.make(target, breaks, repairs, self.SYMPTOMS[0], leaks, hints=self.SYMPTOMS[1:])

    def make(
        self, target: str, breaks: list[str], repairs: list[str], symptom: str, leaks: list[str],
        hints: tuple[str, ...] = (), files: tuple[tuple[str, str], ...] = (),
    ) -> Fault:  # fmt: skip
        return Fault(
            family=self.name,
            category=self.category,
            target=target,
            break_commands=tuple(breaks),
            repair_commands=tuple(repairs),
            symptom=symptom,
            leak_terms=tuple(t for t in leaks if t and len(t) >= 3),
            hints=hints,
            files=files,
        )


def q(text: str) -> str:
    return shlex.quote(text)


def basename(path: str) -> str:
    return path.rstrip("/").rsplit("/", 1)[-1]


def reinstall_deb(package: str) -> str:
    """The offline repair for a file a Debian package ships (the image keeps a local apt repository); a deleted
    configuration file comes back too (`--force-confmiss`)."""
    return f"apt-get install --reinstall -y -o Dpkg::Options::=--force-confmiss {package}"
