"""The runtime probe: run a gold's tests once more, under strace and a module-dumping sitecustomize, and
record what they touched (Python packages and modules, shared libraries, programs, data files, env).

The inverter aims its faults with this: a shared library the tests map, a program they exec or a config
file they read is a place where breaking the environment makes tests fail.

    >>> probe_runtime(load_gold("tzlocal"), "cligym/gold-tzlocal:latest").files_read[:2]  # doctest: +SKIP
    ['/etc/localtime', '/etc/timezone']
"""

from __future__ import annotations

import json
import re
import shlex
from collections import defaultdict

from cligym_env.gold import Gold, RuntimeProbe
from cligym_env.runtime.containers import (
    docker_client,
    exec_once,
    read_file,
    remove_container,
    start_container,
)

PROBE_DIR = "/tmp/cligym-probe"
# Imported first by every Python process (PYTHONPATH): at exit, append its top-level modules to a file.
SITECUSTOMIZE = """\
import atexit, os, sys
def _cligym_dump_modules():
    try:
        with open(os.path.join("/tmp/cligym-probe", "modules.%d" % os.getpid()), "w") as out:
            out.write("\\n".join(sorted({m.split(".")[0] for m in list(sys.modules)})))
    except OSError:
        pass
atexit.register(_cligym_dump_modules)
"""
LIST_PACKAGES = (
    "import importlib.metadata as m, json; "
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions() if d.metadata['Name']}))"
)
_EXECVE = re.compile(r'^\d+\s+execve\("([^"]+)"')
_OPEN = re.compile(r'^\d+\s+(?:openat\([^,]+, |open\()"([^"]+)", ([A-Z_|]+)')
_IGNORED_PREFIXES = ("/proc/", "/sys/", "/dev/", "/tmp/", PROBE_DIR)
_MAX_FILES_PER_DIR = 20


def probe_runtime(gold: Gold, image: str) -> RuntimeProbe:
    """Run `gold`'s test command once under the probe in a fresh container of `image`."""
    spec = gold.spec
    container = start_container(image, network=spec.network, workdir=spec.workdir)
    try:
        setup = f"mkdir -p {PROBE_DIR} && cat > {PROBE_DIR}/sitecustomize.py <<'EOF'\n{SITECUSTOMIZE}EOF"
        exec_once(container, setup, timeout=30)
        traced = (
            f"export PYTHONPATH={PROBE_DIR}${{PYTHONPATH:+:$PYTHONPATH}}; "
            f"strace -f -qq -z -s 4096 -e trace=execve,open,openat -o {PROBE_DIR}/trace "
            f"bash -c {shlex.quote(spec.test_command)}"
        )  # -z: successful calls only
        exec_once(container, traced, timeout=spec.test_timeout * 3, workdir=spec.workdir)
        trace = (read_file(container, f"{PROBE_DIR}/trace") or b"").decode("utf-8", errors="replace")
        dump = f"cat {PROBE_DIR}/modules.* 2>/dev/null; true"
        modules = exec_once(container, dump, timeout=30, output_cap=64 << 20).output.split()  # every module
        packages = _python_packages(container)
    finally:
        remove_container(container)
    executables, libraries, files = _read_trace(trace, spec.workdir)
    env = docker_client().images.get(image).attrs["Config"].get("Env") or []
    return RuntimeProbe(
        python_packages=packages,
        modules=sorted(set(modules) - {"sitecustomize"}),
        shared_libraries=libraries,
        executables=executables,
        files_read=files,
        env_vars=dict(sorted(item.split("=", 1) for item in env if "=" in item)),
    )


def _python_packages(container) -> dict[str, str]:
    """Distributions installed in /opt/venv (none when the gold has no venv)."""
    command = f"test -x /opt/venv/bin/python && /opt/venv/bin/python -c {shlex.quote(LIST_PACKAGES)}"
    result = exec_once(container, command, timeout=60)
    if result.exit_code != 0:
        return {}
    try:
        return dict(sorted(json.loads(result.output.strip().splitlines()[-1]).items()))
    except (ValueError, IndexError):
        return {}


def _read_trace(trace: str, workdir: str) -> tuple[list[str], list[str], list[str]]:
    """(executables, shared libraries, other files) from strace's output, each sorted and unique."""
    executables, libraries, files = set(), set(), set()
    ignored = (*_IGNORED_PREFIXES, workdir.rstrip("/") + "/")
    for line in trace.splitlines():
        if match := _EXECVE.match(line):
            if match.group(1).startswith("/"):  # `./test-reader` from a libtool wrapper: in the project tree
                executables.add(match.group(1))
        elif (match := _OPEN.match(line)) and match.group(1).startswith("/"):
            path, flags = match.group(1), match.group(2)
            if path.startswith(ignored) or "O_DIRECTORY" in flags:
                continue
            if re.search(r"\.so(\.[0-9.]+)?$", path):
                libraries.add(path)
            elif not path.endswith((".py", ".pyc", ".pth")) and "/__pycache__/" not in path:
                files.add(path)
    return sorted(executables), sorted(libraries), _collapse(files)


def _collapse(paths: set[str]) -> list[str]:
    """Keep the list readable: a folder with more than 20 files read is listed once, as `folder/`."""
    by_dir: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        by_dir[path.rsplit("/", 1)[0]].append(path)
    out: list[str] = []
    for folder, items in by_dir.items():
        out.extend([folder + "/"] if len(items) > _MAX_FILES_PER_DIR else items)
    return sorted(out)
