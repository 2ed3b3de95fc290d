"""The split by fault family and repair shape: repair shapes, and no family or shape on both sides."""

from __future__ import annotations

from pathlib import Path

import pytest

from cligym_env.errors import CligymError
from cligym_env.rollout import select_tasks
from cligym_env.splits import fault_split, held_out_families, repair_commands, repair_shape, repair_shapes
from cligym_env.task import Provenance, TaskSpec, dockerfile_text, list_tasks, write_task

SHAPES = {
    "pip install --force-reinstall --no-deps attrs==23.2.0": "pip install --force-reinstall --no-deps <pkg>==<ver>",
    "pip install text-unidecode": "pip install <pkg>",
    "python3 -m pip install six==1.16": "python3 -m pip install <pkg>==<ver>",
    "apt-get install --reinstall -y -o Dpkg::Options::=--force-confmiss libexpat1":
        "apt-get install --reinstall -y -o Dpkg::Options::=--force-confmiss <pkg>",
    "rm -rf /tmp": "rm -rf <path>",
    "mkdir -m 1777 /tmp": "mkdir -m <num> <path>",
    "ln -sfn python3.11 /usr/bin/python3": "ln -sfn <arg> <path>",
    "chmod 0755 /usr/bin/python3.11": "chmod <mode> <path>",
    "chmod a+x /usr/bin/less": "chmod <mode> <path>",
    "printf '%s\\n' '127.0.0.1 localhost' > /etc/hosts": "printf <text> <text> > <path>",
    "LC_ALL=C locale-gen en_US.UTF-8": "locale-gen <arg>",
    "export SSL_CERT_FILE=/etc/ssl/certs/ca.pem": "export <var>=<value>",
    "dpkg -i /var/cache/apt/archives/tzdata.deb": "dpkg -i <path>",
    "ulimit -n 1024": "ulimit -n <num>",
}  # fmt: skip


@pytest.mark.parametrize("command", SHAPES)
def test_repair_shape(command: str) -> None:
    assert repair_shape(command) == SHAPES[command]


def test_repair_commands_split_lines_and_skip_comments() -> None:
    script = (
        "#!/usr/bin/env bash\n# Oracle repair\nset -euo pipefail\n"
        "rm -f /a.pth && rm -rf /b; echo 'a && b' > /c\n\npip install x==1\n"
    )
    assert repair_commands(script) == ["rm -f /a.pth", "rm -rf /b", "echo 'a && b' > /c", "pip install x==1"]
    assert repair_shapes(script) == {
        "rm -f <path>",
        "rm -rf <path>",
        "echo <text> > <path>",
        "pip install <pkg>==<ver>",
    }


FAMILIES = [
    "tmp-dir",
    "locale",
    "hosts",
    "old-dep",
    "ld-path",
    "perm",
    "zoneinfo",
    "proxy",
    "shm",
    "ca-store",
]
REPAIRS = {
    "tmp-dir": "rm -rf /tmp && mkdir -m 1777 /tmp", "locale": "apt-get install --reinstall -y locales",
    "hosts": "printf '127.0.0.1 localhost\\n' > /etc/hosts", "old-dep": "pip install attrs==23.2.0",
    "ld-path": "rm -f /etc/ld.so.conf.d/x.conf && ldconfig", "perm": "chmod 0755 /usr/bin/less",
    "zoneinfo": "apt-get install --reinstall -y tzdata", "proxy": "rm -f /etc/profile.d/proxy.sh",
    "shm": "mount -t tmpfs shm /dev/shm", "ca-store": "apt-get install --reinstall -y ca-certificates",
}  # fmt: skip


def _tasks(root: Path) -> Path:
    """30 tasks: each family alone (twice), and composites of neighbouring families."""
    root.mkdir()
    rows = [(f"{f}-{g}", [f]) for f in FAMILIES for g in ("g1", "g2")]
    rows += [(f"{a}+{b}", [a, b]) for a, b in zip(FAMILIES, FAMILIES[1:] + FAMILIES[:1], strict=True)]
    for task_id, families in rows:
        spec = TaskSpec(
            id=task_id.replace("+", "-and-"), gold="g1", title=task_id, instruction="Tests fail.",
            fault_family="+".join(families), category="other", fail_to_pass=["t::a"], test_command="pytest",
            provenance=Provenance(inverter="manual"),
        )  # fmt: skip
        solution = "\n".join(REPAIRS[f] for f in families)
        write_task(root, spec, dockerfile_text(["true"]), solution)
    return root


def test_fault_split_shares_no_family_and_no_repair_shape(tmp_path: Path) -> None:
    tasks = list_tasks(_tasks(tmp_path / "set"))
    split = fault_split(tasks, test_fraction=0.3)
    assert split.held_out == held_out_families(FAMILIES, 0.3) and split.held_out
    assert split.test and split.train
    assert sorted(split.train + split.test + split.dropped) == sorted(t.id for t in tasks)
    by_id = {t.id: t for t in tasks}

    def families(ids):
        return {f for i in ids for f in by_id[i].spec.fault_family.split("+")}

    def shapes(ids):
        return {s for i in ids for s in repair_shapes(by_id[i].solution_script())}

    assert not families(split.train) & families(split.test)
    assert not shapes(split.train) & shapes(split.test)
    assert families(split.test) <= split.held_out
    for task_id in split.dropped:  # each dropped task would straddle
        t_families, t_shapes = families([task_id]), shapes([task_id])
        assert t_families & split.held_out and t_families - split.held_out or t_shapes & shapes(split.test)
    assert any(not families([i]) & split.held_out for i in split.dropped), (
        "dropped for a held-out repair shape"
    )
    assert fault_split(list(reversed(tasks)), test_fraction=0.3) == split


def test_held_out_families_never_none_nor_all() -> None:
    assert held_out_families(["a"], 0.3) in (set(), {"a"})
    assert len(held_out_families(["a", "b"], 0.0001)) == 1
    assert len(held_out_families(["a", "b"], 0.9999)) == 1


def test_select_tasks_by_fault(tmp_path: Path) -> None:
    root = _tasks(tmp_path / "set")
    split = fault_split(list_tasks(root))
    assert [t.id for t in select_tasks([str(root)], "test", split_by="fault")] == split.test
    assert [t.id for t in select_tasks([str(root)], "train", split_by="fault")] == split.train
    assert len(select_tasks([str(root)], "all", split_by="fault")) == 30
    with pytest.raises(CligymError, match="split-by"):
        select_tasks([str(root)], "test", split_by="project")
