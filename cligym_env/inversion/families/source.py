"""Source logic outside the project: one small edit to an installed dependency or to Python's standard library.

The paper's "source logic" category, with the project's own tree untouched: someone hot-patched a library in
site-packages (or in /usr/lib/python3.x) and forgot. Each fault is one mutation, as in mutation testing: a
comparison flipped (`<` to `<=`, `==` to `!=`, `in` to `not in`), `and` swapped with `or`, or an integer
constant moved by one, inside one function that the tests load. Only the tests that reach that function fail,
so most of the suite keeps passing, and the traceback points into the library, not at the fix.

Sites are found on the host: the module's source is read from a pristine gold container and parsed with `ast`;
the break is one `sed` on one line (the Dockerfile stays readable), and the repair reinstalls the distribution
(pip, from the image's wheelhouse) or the Debian package that ships the module.
"""

from __future__ import annotations

import ast
import dataclasses
import random
import re
from dataclasses import dataclass

from cligym_env.inversion.families.base import Context, Fault, FaultFamily, basename, q, reinstall_deb
from cligym_env.inversion.families.python_env import HARNESS, _force_reinstall
from cligym_env.inversion.tracing import CORE_STDLIB

FLIPS = {"<": "<=", "<=": "<", ">": ">=", ">=": ">", "==": "!=", "!=": "==", "not in": "in", "in": "not in",
         "is not": "is", "is": "is not", "and": "or", "or": "and"}  # fmt: skip
MAX_SITES_PER_MODULE = 40
MAX_MODULES = 40
MAX_REACH = 0.5
"""Share of the suite that may run a mutated line (more: the fault would sweep the suite)."""
SITES_PER_REACH = 3
"""Sites kept per set of tests that run them (they would fail the same tests)."""


@dataclass(frozen=True)
class Site:
    """One mutation: on `line` (1-based) of a file, the `nth` occurrence of `old` becomes `new`."""

    function: str
    line: int
    old: str
    new: str
    nth: int
    kind: str
    statement: int = 0
    """First line of the statement holding the edit (a tracer sees that line run, not always `line`)."""


def mutation_sites(source: str) -> list[Site]:
    """Every single-token mutation in the functions of `source` (comparisons, boolean operators, int constants)."""
    try:
        tree = ast.parse(source)
    except (
        SyntaxError,
        ValueError,
        RecursionError,
        SystemError,
        MemoryError,
    ):  # e.g. a generated parser table
        return []
    lines = source.splitlines()
    statement_of = _statement_lines(tree)
    sites: list[Site] = []
    seen: set[tuple[int, int, str]] = set()
    for func in _functions(tree):
        found = 0
        for node in ast.walk(func):
            site = _site(node, lines, func.name)
            # (a nested function is walked twice: with its parent and alone)
            if site is not None and (site.line, site.nth, site.kind) not in seen:
                seen.add((site.line, site.nth, site.kind))
                sites.append(dataclasses.replace(site, statement=statement_of.get(site.line, site.line)))
                found += 1
            if found >= 12:  # a few per function: diversity over many functions
                break
    return sites


def _statement_lines(tree: ast.AST) -> dict[int, int]:
    """line -> first line of the innermost statement that spans it."""
    statements = [n for n in ast.walk(tree) if isinstance(n, ast.stmt)]
    out: dict[int, int] = {}
    for node in sorted(statements, key=lambda n: (n.end_lineno or n.lineno) - n.lineno, reverse=True):
        for line in range(node.lineno, (node.end_lineno or node.lineno) + 1):
            out[line] = node.lineno
    return out


def _functions(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not node.name.startswith("__"):
            yield node


def _site(node: ast.AST, lines: list[str], function: str) -> Site | None:
    if isinstance(node, ast.Compare) and len(node.ops) == 1:
        op = _OP_TEXT.get(type(node.ops[0]))
        return _operator(lines, node.left, node.comparators[0], op, function, "compare")
    if isinstance(node, ast.BoolOp) and len(node.values) >= 2:
        op = "and" if isinstance(node.op, ast.And) else "or"
        return _operator(lines, node.values[0], node.values[1], op, function, "boolean")
    if (
        isinstance(node, ast.Constant)
        and type(node.value) is int
        and 0 < node.value < 10_000
        and node.lineno == node.end_lineno
    ):
        line = lines[node.lineno - 1]
        old = line[node.col_offset : node.end_col_offset]
        if old != str(node.value):
            return None
        return _exact(line, node.lineno, node.col_offset, old, str(node.value + 1), function, "constant")
    return None


_OP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!=",
            ast.In: "in", ast.NotIn: "not in", ast.Is: "is", ast.IsNot: "is not"}  # fmt: skip


def _operator(lines, left: ast.AST, right: ast.AST, op: str | None, function: str, kind: str) -> Site | None:
    """The operator between two operands on one line, written ` op ` (else no clean single-token edit)."""
    if op is None or left.end_lineno != right.lineno:
        return None
    line = lines[left.end_lineno - 1]
    if line[left.end_col_offset : right.col_offset] != f" {op} ":
        return None
    return _exact(line, left.end_lineno, left.end_col_offset, f" {op} ", f" {FLIPS[op]} ", function, kind)


def _exact(line: str, lineno: int, col: int, old: str, new: str, function: str, kind: str) -> Site | None:
    """A site whose `nth` match (as sed counts: leftmost, non-overlapping) is the one at `col`, else None."""
    nth, at = 0, 0
    while True:
        found = line.find(old, at)
        if found < 0 or found > col:
            return None
        nth += 1
        if found == col:
            return Site(function, lineno, old, new, nth, kind)
        at = found + len(old)


def sed_command(path: str, site: Site) -> str:
    """`sed -i` that makes exactly this edit (the nth match on the line), failing if the line has changed."""

    def esc(text: str) -> str:
        return re.sub(r"([\\/.*\[\]^$&])", r"\\\1", text)

    script = f"{site.line}s/{esc(site.old)}/{esc(site.new)}/{site.nth}"
    return f"grep -qF {q(site.old)} {q(path)} && sed -i {q(script)} {q(path)}"


class PatchedFunction(FaultFamily):
    """Base: mutation sites in the Python files that `files(ctx)` names, as `path:line:nth:kind` targets."""

    languages = ("python",)

    def files(self, ctx: Context) -> dict[str, str]:
        """path -> what repairs it (a shell command)."""
        raise NotImplementedError

    def targets(self, ctx: Context) -> list[str]:
        files = self.files(ctx)
        if not files:
            return []
        coverage = ctx.coverage()
        sources = _read_files(ctx, list(files))
        out = []
        for path, source in sources.items():
            sites = mutation_sites(source)
            if coverage.tests:  # lines some tests run, not all: else nobody or everybody notices
                sites = _aimed(coverage, path, sites)
            for site in sites[:MAX_SITES_PER_MODULE]:
                out.append(f"{path}:{site.line}:{site.nth}:{site.kind}")
        return out

    def fault(self, ctx: Context, target: str, rng: random.Random) -> Fault | None:
        path, line, nth, kind = target.rsplit(":", 3)
        repair = self.files(ctx).get(path)
        source = _read_files(ctx, [path]).get(path)
        if not repair or source is None:
            return None
        site = next(
            (s for s in mutation_sites(source) if (s.line, s.nth, s.kind) == (int(line), int(nth), kind)),
            None,
        )
        if site is None:
            return None
        module = basename(path)
        leaks = [path, module, f"{module.removesuffix('.py')}.py"]
        if len(site.function) >= 6:
            leaks.append(site.function)
        fault = self.make_fault(target, [sed_command(path, site)], [repair], leaks)
        _count, watch, _outside = ctx.coverage().reach(path, site.line, site.statement)
        return dataclasses.replace(fault, watch=tuple(watch))


def _aimed(coverage, path: str, sites: list[Site]) -> list[Site]:
    """The sites whose line ran in some tests, in at most `MAX_REACH` of them, and never outside a test (a line
    run at import time reaches every test); at most `SITES_PER_REACH` per set of tests that run them (sites run
    by the same tests would mostly fail the same tests: near-duplicates of each other)."""
    by_tests: dict[tuple, int] = {}
    kept = []
    for site in sites:
        count, ids, outside = coverage.reach(path, site.line, site.statement)
        if not 0 < count <= MAX_REACH * len(coverage.tests) or outside:
            continue
        by_tests[tuple(ids)] = by_tests.get(tuple(ids), 0) + 1
        if by_tests[tuple(ids)] <= SITES_PER_REACH:
            kept.append(site)
    return kept


class PatchedDependency(PatchedFunction):
    name = "patched-dependency-logic"
    category = "source-logic"
    direction = (
        "change one comparison, boolean operator or constant inside a function of an installed dependency"
    )
    SYMPTOMS = (
        "A library the project relies on gives subtly different answers than it used to.",
        "Some results computed through a third-party package are off, although that package was never upgraded.",
        "The failures come from inside an installed package, not from the project's code.",
        "One installed dependency no longer behaves like the release it claims to be.",
    )

    def files(self, ctx: Context) -> dict[str, str]:
        probe = ctx.probe
        loaded = set(probe.runtime.get("modules", []))
        dists = probe.dependency_closure() + probe.test_only_dists()
        out: dict[str, str] = {}
        for dist in dict.fromkeys(dists):
            info = probe.dists.get(dist)
            if not info or dist in HARNESS or dist == probe.project_dist:
                continue
            for module in info.get("modules", []):
                dotted = module.removesuffix(".py").replace("/", ".").removesuffix(".__init__")
                if loaded and dotted not in loaded:
                    continue
                out[f"{probe.site_packages}/{module}"] = _force_reinstall(ctx, dist)
        return dict(list(out.items())[:MAX_MODULES])


class PatchedStdlib(PatchedFunction):
    name = "patched-stdlib-logic"
    category = "source-logic"
    direction = "change one comparison, boolean operator or constant inside a standard-library function"
    SYMPTOMS = (
        "Part of Python's own standard library misbehaves: some results are subtly wrong.",
        "Code that only uses the standard library returns values the tests do not expect.",
        "The traceback ends inside Python's standard library, in code nobody here maintains.",
    )

    def files(self, ctx: Context) -> dict[str, str]:
        probe = ctx.probe
        if not probe.stdlib:
            return {}
        loaded = [m for m in probe.runtime.get("modules", []) if m.split(".")[0] not in CORE_STDLIB]
        loaded += [m for m in probe.test_scoped if m not in CORE_STDLIB]
        candidates = [
            f"{probe.stdlib}/{m.replace('.', '/')}{suffix}"
            for m in dict.fromkeys(loaded)
            for suffix in (".py", "/__init__.py")
            if not m.startswith("_")
        ]
        present = _existing(ctx, candidates)
        out = {}
        for path in present[:MAX_MODULES]:
            package = ctx.owner(path)
            if package:
                out[path] = reinstall_deb(package)
        return out


def _existing(ctx: Context, paths: list[str]) -> list[str]:
    if not paths:
        return []
    out = ctx.sh("for f in " + " ".join(q(p) for p in paths) + '; do [ -f "$f" ] && echo "$f"; done')
    return [line.strip() for line in out.splitlines() if line.startswith("/")]


def _read_files(ctx: Context, paths: list[str]) -> dict[str, str]:
    """The text of each file in the pristine container (cached on the context), a few files per round trip."""
    cache = ctx.texts
    todo = [p for p in paths if p not in cache]
    for batch in (todo[i : i + 4] for i in range(0, len(todo), 4)):  # each answer stays under the output cap
        marker = "@@cligym-file "
        out = ctx.sh(
            "for f in "
            + " ".join(q(p) for p in batch)
            + f'; do [ -f "$f" ] && [ $(stat -c %s "$f") -lt 400000 ] && echo "{marker}$f" && cat "$f"; done'
        )
        for chunk in out.split(marker)[1:]:
            path, _, text = chunk.partition("\n")
            cache[path.strip()] = text
        for path in batch:
            cache.setdefault(path, None)  # absent or too large: not asked again
    return {p: cache[p] for p in paths if cache.get(p) is not None}


def apply_site(source: str, site: Site) -> str:
    """`source` after the edit `sed_command` makes (for checks on the host)."""
    lines = source.split("\n")
    line, at = lines[site.line - 1], 0
    for _ in range(site.nth):
        found = line.find(site.old, at)
        at = found + len(site.old)
    lines[site.line - 1] = line[:found] + site.new + line[at:]
    return "\n".join(lines)


FAMILIES = (PatchedDependency(), PatchedStdlib())
