"""One inversion attempt, end to end: break a live gold container, keep what flips tests, prove the repair.

Cheap checks come first: the breaking commands run in a live container of the gold image, and only a
candidate that already flipped tests there is built into an image, re-tested (same result twice) and repaired
in a fresh container. Every way out is either a written task or a `Rejection` with a reason.
"""

from __future__ import annotations

import contextlib
import io
import random
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import docker.errors
from docker.models.containers import Container

from cligym_env.errors import BuildError, CligymError
from cligym_env.gold import Gold, GoldRecord
from cligym_env.gold_image import build_gold
from cligym_env.inversion.families.base import Context, Fault
from cligym_env.inversion.hygiene import concealed_dockerfile
from cligym_env.inversion.probe import Probe, probe_gold
from cligym_env.inversion.statement import leaks, write_statement
from cligym_env.inversion.symptoms import plain_output
from cligym_env.inversion.tracing import screen
from cligym_env.inversion.validate import tests_in_fresh_container
from cligym_env.runtime.containers import docker_client, exec_once, remove_container, start_container
from cligym_env.runtime.sourcetree import SourceGuard
from cligym_env.specs import write_atomic
from cligym_env.task import (
    BROKEN_OUTPUT_FILE,
    FILES_DIR,
    Provenance,
    Task,
    TaskSpec,
    Timeouts,
    copy_files,
    outcome_key,
    write_task,
)
from cligym_env.task_image import build_broken_image, run_task_tests
from cligym_env.testing import Outcome, TestReport

BREAK_TIMEOUT = 300.0
BROKEN_OUTPUT_CHARS = 8000


@dataclass
class Proposal:
    """A candidate from an inverter: breaking commands, a repair, and what to call it."""

    break_commands: list[str]
    repair_commands: list[str]
    family: str
    category: str
    faults: list[Fault] = field(default_factory=list)
    """The family-made faults it combines (empty for free-form LLM proposals)."""
    title: str = ""
    signature: str = ""
    leak_terms: tuple[str, ...] = ()
    composed: bool = False
    """Made of faults that each became a task on this gold alone: all are kept, none is a decoy."""
    files: tuple[tuple[str, str], ...] = ()
    """Host files the break needs, as (host path, path under the task's `files/` and `FILES_DIR`)."""

    @classmethod
    def from_faults(cls, faults: list[Fault], gold: str, composed: bool = False) -> Proposal:
        """Combine faults: break in order, repair in reverse order."""
        families = sorted({f.family for f in faults})
        return cls(
            break_commands=[c for f in faults for c in f.break_commands],
            repair_commands=[c for f in reversed(faults) for c in f.repair_commands],
            family=faults[0].family if len(faults) == 1 else "+".join(families),
            category=faults[0].category,
            faults=faults,
            title=f"{gold}: " + "; ".join(f"{f.family} ({f.target.rsplit('/', 1)[-1]})" for f in faults),
            signature="+".join(sorted(f.signature for f in faults)),
            leak_terms=tuple(t for f in faults for t in f.leak_terms),
            composed=composed and len(faults) > 1,
            # Lists when a fault came back from the journal (JSON): tuples, once per destination.
            files=tuple({dest: (str(host), dest) for f in faults for host, dest in f.files}.values()),
        )

    def solution_script(self) -> str:
        return (
            "#!/usr/bin/env bash\n# Oracle repair, verified by `cligym validate`.\nset -euo pipefail\n"
            + "\n".join(self.repair_commands)
            + "\n"
        )


class Rejection(CligymError):
    """A proposal that did not become a task; `reason` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class GoldWorkspace:
    """Per worker and gold: the gold's image, record, probe, and a pristine container for read-only queries."""

    def __init__(self, gold: Gold, progress=None):
        self.gold = gold
        self.image, _ = build_gold(gold, progress=progress)
        record = gold.record()
        if record is None or record.image != self.image:
            from cligym_env.gold_image import verify_gold

            record = verify_gold(gold, progress=progress)
        self.record: GoldRecord = record
        self.probe: Probe = probe_gold(gold, self.image)
        self._query = None
        self.context = Context(self.probe, self.query)

    def query(self, command: str) -> str:
        """Run a read-only command in the pristine container: started on first use, and again if something
        outside removed it (`cligym gc`, a test run cleaning up), so a long `generate` run goes on."""
        try:
            return exec_once(self._pristine(), command, timeout=60).output
        except docker.errors.NotFound:
            self._query = None
            return exec_once(self._pristine(), command, timeout=60).output

    def _pristine(self) -> Container:
        if self._query is None:
            self._query = start_container(self.image, workdir=self.gold.spec.workdir)
        return self._query

    def close(self) -> None:
        if self._query is not None:
            remove_container(self._query)
            self._query = None


def _flipped(report: TestReport, healthy: list[str]) -> list[str]:
    return sorted(t for t in healthy if report.status_of(t) is not Outcome.PASSED)


def _visible(report: TestReport, fail_to_pass: list[str]) -> bool:
    """Whether a person running the suite would see something wrong: no results at all, a failed or errored
    test (a collection error included), or one of the flipped tests skipped."""
    if not report.outcomes:
        return True
    if any(o in (Outcome.FAILED, Outcome.ERROR) for o in report.outcomes.values()):
        return True
    return any(report.status_of(t) is Outcome.SKIPPED for t in fail_to_pass)


def _shell_join(commands: list[str]) -> str:
    return "set -e\n" + "\n".join(commands)


def run_attempt(ws: GoldWorkspace, proposal: Proposal, dest_root, task_id: str, provenance: Provenance,
                rng: random.Random, claim=None, timings: dict | None = None, writer=write_statement, *,
                max_fail_share: float = 1.0) -> Task:  # fmt: skip
    """Validate `proposal` on the gold and write the task; raises Rejection with the reason otherwise.

    A proposal of several faults keeps only those that make more tests fail than the faults before them (a
    fault nobody can observe is a decoy, not a task); `claim(key) -> bool` then re-checks the smaller
    proposal's signature for duplicates, and reserves the candidate's `outcome_key` (near-duplicates). A
    composed proposal (parts validated alone) is broken and tested in one go: each part fails tests by itself,
    so each is needed even where another part masks it. `timings` receives seconds per stage. A candidate
    failing at least `max_fail_share` of the gold's tests is refused as `sweeping`.
    """
    gold, spec = ws.gold, ws.gold.spec
    healthy = ws.record.passing
    timings = timings if timings is not None else {}
    clock = time.monotonic()
    probe_task = Task(dest_root / task_id, _spec(ws, proposal, task_id, ["-"], [], "-", None, provenance))
    # 1. Live: break a running gold container, check the project source is untouched, run the tests.
    container = start_container(ws.image, network=spec.network, workdir=spec.workdir)
    try:
        steps = [(f, list(f.break_commands)) for f in proposal.faults]
        if proposal.composed or not steps:
            steps = [(None, proposal.break_commands)]
        kept, fail_to_pass = [], []
        guard = SourceGuard(container, spec.workdir)
        put_files(container, proposal.files)
        for fault, commands in steps:
            result = exec_once(container, _shell_join(commands), timeout=BREAK_TIMEOUT, workdir="/")
            if result.exit_code != 0:
                raise Rejection("break-failed", f"exit {result.exit_code}: {result.output[-300:].strip()}")
            touched = guard.changes()
            if touched:
                raise Rejection("touched-source", ", ".join(touched[:5]))
            if fault is not None and fault.watch and len(steps) == 1:
                quick = screen(container, spec.test_command, spec.workdir, list(fault.watch))
                if quick is not None and quick.conclusive_pass:
                    timings["screen"] = elapsed(clock)
                    raise Rejection("no-flip", f"the {quick.passed} tests that reach the change still pass")
            live = run_task_tests(probe_task, container)
            if live.claims_success():  # e.g. a file-size limit that stops only the results file being written
                raise Rejection("harness-only", f"the tests pass but report nothing: {live.error}")
            flipped = _flipped(live, healthy)
            if len(flipped) > len(fail_to_pass):
                kept.append(fault)
                fail_to_pass = flipped
            if len(steps) > 1:  # what the tests wrote (caches, databases) is theirs
                guard.snapshot()
    finally:
        remove_container(container)
    timings["live"] = elapsed(clock)
    if not fail_to_pass:
        raise Rejection("no-flip", live.summary())
    if not _visible(live, fail_to_pass):
        # The tests that "fail" are gone from a green run (e.g. a parametrization that depends on a version):
        # nobody running the suite would see a failure, so there is nothing to report or diagnose.
        raise Rejection("no-visible-failure", f"{len(fail_to_pass)} tests missing from a run that passes")
    if proposal.faults and not proposal.composed and len(kept) < len(proposal.faults):
        proposal = Proposal.from_faults(kept, gold.name)
        if claim is not None and not claim(proposal.signature):
            raise Rejection("duplicate", f"{proposal.signature} (after dropping faults that changed nothing)")
        return run_attempt(
            ws,
            proposal,
            dest_root,
            task_id,
            provenance,
            rng,
            claim,
            timings,
            writer,
            max_fail_share=max_fail_share,
        )
    # A fault that fails (nearly) the whole suite says little about the project: refused when the run wants
    # partial failures (`max_fail_share`, e.g. 0.9 once the set holds its share of sweeping tasks).
    if max_fail_share < 1.0 and len(fail_to_pass) >= max_fail_share * len(healthy):
        raise Rejection("sweeping", f"{len(fail_to_pass)} of {len(healthy)} tests fail")
    # A near-duplicate (same family, same failing tests as a task made already, e.g. /tmp turned into a file
    # rather than a dangling link) is dropped before the expensive part.
    if claim is not None and not claim(outcome_key(proposal.family, fail_to_pass)):
        raise Rejection(
            "near-duplicate",
            f"{proposal.family}: the same {len(fail_to_pass)} failing tests as an earlier task",
        )
    # 2. Built: the Dockerfile gives the same failures in a fresh container (not flaky, not order-dependent).
    clock = time.monotonic()
    # Built with no forensic traces (mtimes, logs, backups; see hygiene.py); the live run had them, harmlessly.
    copy = [f"COPY files/ {FILES_DIR}/"] if proposal.files else []
    dockerfile = concealed_dockerfile(proposal.break_commands, rng.randrange(1 << 30), proposal.title, copy)
    try:
        with tempfile.TemporaryDirectory(prefix="cligym-files-") as staged:  # the task folder comes last
            files = copy_files(proposal.files, Path(staged)) if proposal.files else None
            image = build_broken_image(gold.name, dockerfile, files=files, repo=f"cligym/task-{task_id}")
    except BuildError as exc:
        raise Rejection("build-failed", str(exc)[:300]) from None
    try:
        timings["build"] = elapsed(clock)
        clock = time.monotonic()
        broken, _ = tests_in_fresh_container(image, probe_task)
        timings["rerun"] = elapsed(clock)
        clock = time.monotonic()
        if _flipped(broken, healthy) != fail_to_pass:
            raise Rejection(
                "flaky", f"{len(fail_to_pass)} failed live, {len(_flipped(broken, healthy))} in the image"
            )
        # 3. The repair works in a fresh container of the broken image.
        repaired, output = tests_in_fresh_container(
            image, probe_task, before_tests=proposal.solution_script()
        )
        still = _flipped(repaired, healthy)
        timings["repair"] = elapsed(clock)
        if still:
            raise Rejection(
                "repair-failed", f"{len(still)} tests still fail, e.g. {still[0]}; {output[-200:].strip()}"
            )
        # 4. A problem statement that does not give the fix away.
        instruction, hint = writer(
            gold.name,
            spec.workdir,
            spec.test_command,
            proposal.faults,
            broken,
            fail_to_pass,
            len(healthy),
            rng,
        )
        # The statement may quote the test command the user runs (`cargo test`): its words give nothing away.
        terms = tuple(t for t in proposal.leak_terms if t.lower() not in spec.test_command.lower())
        leaked = leaks(instruction + "\n" + hint, terms)
        if leaked:
            raise Rejection("statement-leak", ", ".join(leaked))
    except Rejection:
        _remove_image(image)
        raise
    pass_to_pass = sorted(set(healthy) - set(fail_to_pass))
    spec_out = _spec(ws, proposal, task_id, fail_to_pass, pass_to_pass, instruction, hint, provenance)
    task = write_task(dest_root, spec_out, dockerfile, proposal.solution_script(), files=proposal.files)
    # What the broken run printed: the real symptom, for restating and auditing without a rerun.
    write_atomic(
        task.path / BROKEN_OUTPUT_FILE, plain_output(broken.output_tail or "")[-BROKEN_OUTPUT_CHARS:]
    )
    return task


def _spec(ws: GoldWorkspace, proposal: Proposal, task_id: str, f2p: list[str], p2p: list[str], instruction: str,
          hint: str | None, provenance: Provenance) -> TaskSpec:  # fmt: skip
    spec = ws.gold.spec
    return TaskSpec(
        id=task_id,
        gold=ws.gold.name,
        title=proposal.title or proposal.family,
        instruction=instruction,
        hint=hint or None,
        fault_family=proposal.family,
        category=proposal.category,
        signature=proposal.signature or None,
        fail_to_pass=f2p,
        pass_to_pass=p2p,
        workdir=spec.workdir,
        test_command=spec.test_command,
        results=spec.results,
        network=spec.network,
        timeouts=Timeouts(tests=float(spec.test_timeout)),
        provenance=provenance.model_copy(update={"gold_image": ws.image}),
    )


def put_files(container: Container, files: tuple[tuple[str, str], ...]) -> None:
    """Copy (host path, relative path) pairs into `FILES_DIR` of a running container, as the Dockerfile's COPY
    does in the build."""
    if not files:
        return
    parent, name = FILES_DIR.rsplit("/", 1)
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as tar:
        folder = tarfile.TarInfo(name)
        folder.type, folder.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(folder)
        for host, dest in files:
            tar.add(host, arcname=f"{name}/{dest}")
    if not container.put_archive(parent, payload.getvalue()):
        raise Rejection("break-failed", f"could not copy {len(files)} files into {FILES_DIR}")


def _remove_image(image: str) -> None:
    # Only the rejected image itself: its parents are the gold's layers, which other builds use. In use or
    # already gone: a harmless leftover that `docker image prune` clears.
    with contextlib.suppress(docker.errors.APIError):
        docker_client().images.remove(image, noprune=True)


def elapsed(start: float) -> float:
    return round(time.monotonic() - start, 2)
