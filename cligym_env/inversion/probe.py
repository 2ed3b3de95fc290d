"""What an inverter needs to aim: facts about a gold environment, read from a live container of its image."""

from __future__ import annotations

import json
import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from cligym_env.gold import Gold
from cligym_env.runtime.cache import cache_dir
from cligym_env.runtime.containers import exec_once, remove_container, start_container

# Printed by one script in the container: everything below in one round trip.
_PROBE_SCRIPT = r"""
py=$(command -v python || true)
echo "@@python $py"
if [ -n "$py" ]; then
  "$py" - <<'PYEOF'
import json, sys, sysconfig, importlib.metadata as md
dists = {}
for d in md.distributions():
    name = d.metadata["Name"]
    if not name:
        continue
    files = [str(f) for f in (d.files or []) if str(f).endswith((".so", ".py")) and "__pycache__" not in str(f)]
    mods = sorted({str(f).split("/")[0].removesuffix(".py") for f in (d.files or [])
                   if "/" in str(f) or str(f).endswith(".py")}
                  - {"..", "bin"})
    dists[name.lower()] = {"version": d.version, "requires": [r.split(";")[0].split()[0].split("[")[0].split("<")[0]
                           .split(">")[0].split("=")[0].split("!")[0].split("~")[0].lower()
                           for r in (d.requires or []) if "extra ==" not in r],
                           "native": [f for f in files if f.endswith(".so")],
                           "modules": [f for f in files if f.endswith(".py")][:60],
                           "top_level": [m for m in mods if not m.endswith(".dist-info")]}
# Modules the project (its code or its tests) imports only inside functions, never at module level: a test
# runner imports every test module before it runs anything (pytest stops the whole run on one import error),
# so deleting a module imported at module level fails every test, and one imported lazily fails only the tests
# that get there. Found by parsing the files, not by importing them.
import ast, os, importlib.util
eager, lazy = set(), set()
def _imports(node):
    if isinstance(node, ast.Import):
        return {a.name.split(".")[0] for a in node.names}
    if isinstance(node, ast.ImportFrom) and node.module and not node.level:
        return {node.module.split(".")[0]}
    return set()
def _visit(node, in_function):
    for child in ast.iter_child_nodes(node):
        (lazy if in_function else eager).update(_imports(child))
        _visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))
for folder, dirs, names in os.walk("."):
    dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("node_modules", "__pycache__")]
    for name in names:
        if name.endswith(".py"):
            try:
                _visit(ast.parse(open(os.path.join(folder, name), "rb").read()), False)
            except (SyntaxError, ValueError, OSError, RecursionError):
                continue
# What the interpreter and the test runner load by themselves (pytest with its plugins, collecting nothing):
# a module among these fails every test, not some.
import subprocess
harness = ("import sys\ntry:\n import pytest\n pytest.main(['--co', '-q', '-p', 'no:cacheprovider', "
           "'/nonexistent-cligym-probe'])\nexcept BaseException:\n pass\nprint('@@loaded', *sys.modules)")
try:
    run = subprocess.run([sys.executable, "-c", harness], capture_output=True, text=True, timeout=120)
    loaded = {m.split(".")[0] for m in run.stdout.rpartition("@@loaded")[2].split()}
except (OSError, subprocess.SubprocessError):
    loaded = set()
scoped = {}
for mod in sorted(lazy - eager - loaded - set(sys.builtin_module_names)):
    try:
        spec = importlib.util.find_spec(mod)
    except (ImportError, ValueError):
        continue
    if spec is not None and spec.origin and os.path.isfile(spec.origin):
        scoped[mod] = os.path.realpath(spec.origin)
print("@@json " + json.dumps({"site_packages": sysconfig.get_paths()["purelib"], "stdlib": sysconfig.get_paths()["stdlib"],
      "executable": sys.executable, "version": sys.version.split()[0], "dists": dists, "test_scoped": scoped}))
PYEOF
fi
echo "@@real_python $(readlink -f "$py" 2>/dev/null)"
for f in /usr/lib/x86_64-linux-gnu/*.so.* ; do [ -L "$f" ] || echo "@@lib $f"; done | head -400
for f in "$(dirname "$(readlink -f "$py")")"/../lib/python3*/lib-dynload/*.so; do echo "@@dynload $(readlink -f "$f")"; done 2>/dev/null | head -200
"""


@dataclass
class Probe:
    """Facts about one gold image that fault families aim at (cached per image)."""

    gold: str
    image: str
    workdir: str
    project_dist: str
    """The project's own distribution name (never a target of dependency faults)."""
    python: str = ""
    """Path of the interpreter the tests use (a venv symlink), and the real binary it points to."""
    real_python: str = ""
    python_version: str = ""
    site_packages: str = ""
    stdlib: str = ""
    dists: dict[str, dict] = field(default_factory=dict)
    """Installed distributions: name -> {version, requires, native (.so files), top_level (modules)}."""
    system_libraries: list[str] = field(default_factory=list)
    """Real files (not symlinks) of the system's shared libraries."""
    dynload: list[str] = field(default_factory=list)
    """The interpreter's compiled stdlib modules (lib-dynload/*.so)."""
    test_scoped: dict[str, str] = field(default_factory=dict)
    """Modules that only some tests need: the project's code or tests import them inside functions only, never
    at module level, and the test runner (pytest and its plugins, with nothing to collect) does not load them:
    module -> its file."""
    runtime: dict = field(default_factory=dict)
    """The gold record's runtime probe (modules, shared_libraries, executables, files_read), when recorded."""

    def dependency_closure(self) -> list[str]:
        """Distributions the project needs at run time, directly or not (not the project, not pip/setuptools)."""
        seen: list[str] = []
        todo = list(self.dists.get(self.project_dist, {}).get("requires", []))
        while todo:
            name = todo.pop(0).replace("_", "-")
            if name in seen or name not in self.dists:
                continue
            seen.append(name)
            todo += self.dists[name].get("requires", [])
        return seen

    def test_only_dists(self) -> list[str]:
        """Installed distributions that are neither the project, its runtime closure, nor packaging tools."""
        skip = {self.project_dist, "pip", "setuptools", "wheel", *self.dependency_closure()}
        return sorted(d for d in self.dists if d not in skip)


def probe_gold(gold: Gold, image: str) -> Probe:
    """Probe a fresh container of `image` (cached on disk by image name)."""
    # The folder's version changes with what a probe records (v4: test_scoped = lazily imported modules).
    cache = cache_dir("probes-v4") / f"{image.replace('/', '_').replace(':', '_')}.json"
    record = gold.record()
    runtime = record.runtime.model_dump() if record and getattr(record, "runtime", None) else {}
    if cache.exists():
        data = json.loads(cache.read_text())
        data["runtime"] = runtime
        return Probe(**data)
    container = start_container(image, network=False, workdir=gold.spec.workdir)
    try:
        # ~20 KB on a typical gold; far more (every file of every distribution) on a large one: not capped at 1 MiB
        output = exec_once(
            container, _PROBE_SCRIPT, timeout=120, workdir=gold.spec.workdir, output_cap=64 << 20
        ).output
    finally:
        remove_container(container)
    probe = Probe(
        gold=gold.name,
        image=image,
        workdir=gold.spec.workdir,
        project_dist=gold.spec.package_name.lower().replace("_", "-"),
    )
    for line in output.splitlines():
        key, _, value = line.partition(" ")
        if key == "@@python":
            probe.python = value.strip()
        elif key == "@@real_python":
            probe.real_python = value.strip()
        elif key == "@@lib":
            probe.system_libraries.append(value.strip())
        elif key == "@@dynload":
            probe.dynload.append(value.strip())
        elif key == "@@json":
            data = json.loads(value)
            probe.site_packages, probe.stdlib = data["site_packages"], data["stdlib"]
            probe.python_version = data["version"]
            probe.dists = {k.replace("_", "-"): v for k, v in data["dists"].items()}
            probe.test_scoped = data.get("test_scoped", {})
    _write(cache, probe)
    probe.runtime = runtime
    return probe


def _write(path: Path, probe: Probe) -> None:
    data = asdict(probe)
    data.pop("runtime")
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    tmp.replace(path)


def q(text: str) -> str:
    """Shell-quote (short alias used by the fault families)."""
    return shlex.quote(text)
