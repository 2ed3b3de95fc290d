"""`cligym generate`: many attempts over many golds, in parallel, resumable, deduplicated.

Every attempt is numbered; attempt k works on gold k mod G with a seed derived from (seed, gold, k), so a run
is reproducible and a rerun skips the attempts its journal (`OUT/.generate/journal.jsonl`) already has. Tasks
are written atomically, and their fault signatures are the dedup key, so a kill at any moment loses nothing
and duplicates nothing.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import shutil
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cligym_env.errors import CligymError
from cligym_env.gold import Gold
from cligym_env.inversion.feedback import Feedback, fault_to_dict
from cligym_env.inversion.pipeline import GoldWorkspace, Rejection, run_attempt
from cligym_env.inversion.statement import DistinctStatements, write_statement
from cligym_env.runtime.containers import PROCESS_ID, PROCESS_LABEL, gc
from cligym_env.task import Provenance, list_tasks, outcome_key

JOURNAL = Path(".generate") / "journal.jsonl"
CONVERSATIONS = "conversations.jsonl"
"""Beside the journal: an LLM inverter's conversation per attempt."""
MAX_BARREN_ATTEMPTS = 300
MAX_STRIDE = 6
"""A gold whose tests take k times the median gold's gets an attempt every min(k/2, MAX_STRIDE) rounds."""


@dataclass
class Budget:
    """When to stop besides reaching N tasks: a number of attempts and/or minutes (this run)."""

    attempts: int | None = None
    minutes: float | None = None

    @classmethod
    def parse(cls, text: str | None) -> Budget:
        """`500` (attempts), `30m` / `2h` (time), or both comma-separated."""
        budget = cls()
        for part in (text or "").replace(" ", "").split(","):
            if not part:
                continue
            if part[-1] in "mh":
                budget.minutes = float(part[:-1]) * (60 if part[-1] == "h" else 1)
            else:
                budget.attempts = int(part)
        return budget


@dataclass
class Summary:
    """What a run did (this run only, plus the journal's totals)."""

    accepted: int = 0
    attempts: int = 0
    reasons: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    total_accepted: int = 0

    def as_dict(self) -> dict:
        per_hour = self.accepted / self.seconds * 3600 if self.seconds else 0.0
        return {
            "accepted": self.accepted,
            "attempts": self.attempts,
            "rejected": dict(self.reasons),
            "seconds": round(self.seconds, 1),
            "tasks_per_hour": round(per_hour, 1),
            "total_accepted_in_journal": self.total_accepted,
        }


def attempt_seed(seed: int, gold: str, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{gold}:{index}".encode()).digest()[:8], "big")


class Generator:
    """Holds the shared state of one `generate` run: journal, known signatures, counters."""

    def __init__(self, golds: list[Gold], out: Path, inverter, seed: int = 0, progress: Callable | None = None,
                 writer: Callable | None = None):  # fmt: skip
        self.golds, self.out, self.inverter, self.seed = golds, out, inverter, seed
        self.statements: dict[str, set[str]] = defaultdict(set)
        """Per gold, the instructions of its tasks: a new task's statement is never one of them."""
        self.writer = DistinctStatements(writer or write_statement, self.statements)
        self.say = progress or (lambda _m: None)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.journal_path = out / JOURNAL
        self.done: set[tuple[str, int]] = set()
        self.signatures: set[str] = set()
        self.titles: list[str] = []
        self.unhealthy: dict[str, str] = {}
        self.total_accepted = 0
        self.feedback = Feedback()
        self.max_fail_share = 1.0
        """Refuse candidates that fail at least this share of the gold's tests (1.0: refuse none)."""
        self._local = threading.local()
        self._workspaces: list[GoldWorkspace] = []
        self._load()

    def _load(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        # Containers a killed earlier run left behind carry its process label: remove them, note our own.
        processes = self.journal_path.with_name("processes.txt")
        processes.parent.mkdir(parents=True, exist_ok=True)
        self._lock_file = open(self.journal_path.with_name("lock"), "w")  # noqa: SIM115 (held for the run)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CligymError(
                f"another `cligym generate` is writing to {self.out}; wait for it or stop it"
            ) from None
        for process_id in processes.read_text().split() if processes.exists() else []:
            if process_id != PROCESS_ID:
                gc(labels={PROCESS_LABEL: process_id})
        processes.write_text(PROCESS_ID + "\n")
        for partial in self.out.glob(".*.partial"):  # a kill during a task write leaves only this behind
            shutil.rmtree(partial, ignore_errors=True)
        for task in list_tasks(self.out):
            spec = task.spec
            if spec.signature:
                self.signatures.add(f"{spec.gold}|{spec.signature}")
            self.signatures.add(f"{spec.gold}|{outcome_key(spec.fault_family, spec.fail_to_pass)}")
            self.titles.append(spec.title)
            self.statements[spec.gold].add(spec.instruction)
            self.total_accepted += 1
        if self.journal_path.exists():
            for line in self.journal_path.read_text().splitlines():
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by a kill: that attempt is simply redone
                self.done.add((entry["gold"], entry["index"]))
                self.feedback.observe(entry)

    def _record(self, entry: dict) -> None:
        with self.lock:
            self.journal_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.journal_path, "a") as handle:
                handle.write(json.dumps(entry) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            self.done.add((entry["gold"], entry["index"]))
        self.feedback.observe(entry)

    def _workspace(self, gold: Gold) -> GoldWorkspace:
        if gold.name in self.unhealthy:
            raise Rejection("gold-unhealthy", self.unhealthy[gold.name])
        cache = getattr(self._local, "ws", None)
        if cache is None:
            cache = self._local.ws = {}
        if gold.name not in cache:
            try:
                cache[gold.name] = GoldWorkspace(gold, progress=self.say)
            except (
                CligymError
            ) as exc:  # a gold that does not build or verify: skip it for the rest of the run
                with self.lock:
                    self.unhealthy[gold.name] = str(exc).splitlines()[0][:300]
                raise Rejection("gold-unhealthy", self.unhealthy[gold.name]) from None
            with self.lock:
                self._workspaces.append(cache[gold.name])
        return cache[gold.name]

    def _claimer(self, gold: str, reserved: list[str]) -> Callable[[str], bool]:
        """`claim(key)` for one gold: reserve a fault signature or an outcome key for an attempt (appended to
        `reserved`); False if a task or another attempt on the same gold has it (the same fault on another gold
        is a different task)."""

        def claim(key: str) -> bool:
            key = f"{gold}|{key}"
            with self.lock:
                if key in self.signatures:
                    return False
                self.signatures.add(key)
                reserved.append(key)
                return True

        return claim

    def _release(self, keys: list[str]) -> None:
        with self.lock:
            self.signatures.difference_update(keys)

    def attempt(self, gold: Gold, index: int) -> dict:
        """Run attempt `index` on `gold`; returns its journal entry (already written)."""
        started = time.monotonic()
        seed = attempt_seed(self.seed, gold.name, index)
        rng = random.Random(seed)
        entry = {"gold": gold.name, "index": index, "seed": seed, "inverter": self.inverter.name}
        reserved: list[str] = []
        try:
            ws = self._workspace(gold)
            proposal = self.inverter.propose(ws, rng, self.titles[-50:], self.feedback)
            if proposal is None:
                raise Rejection("no-proposal", "the inverter found nothing to break")
            entry.update(family=proposal.family, signature=proposal.signature)
            claim = self._claimer(gold.name, reserved)
            if not claim(proposal.signature):
                raise Rejection("duplicate", proposal.signature)
            task_id = f"{gold.name}-{hashlib.sha256(proposal.signature.encode()).hexdigest()[:10]}"
            provenance = Provenance(inverter=self.inverter.name, model=self.inverter.model, seed=seed)
            timings: dict = {}
            entry["timings"] = timings
            task = run_attempt(
                ws,
                proposal,
                self.out,
                task_id,
                provenance,
                rng,
                claim=claim,
                timings=timings,
                writer=self.writer,
                max_fail_share=self.max_fail_share,
            )
            entry.update(
                status="accepted",
                task_id=task.id,
                family=task.spec.fault_family,
                signature=task.spec.signature,
                fail_to_pass=len(task.spec.fail_to_pass),
            )
            if len(proposal.faults) == 1 and task.spec.signature == proposal.faults[0].signature:
                entry["fault"] = fault_to_dict(proposal.faults[0])  # a part for later composites
            with self.lock:
                self.titles.append(task.spec.title)
        except Rejection as exc:
            entry.update(status="rejected", reason=exc.reason, detail=exc.detail[:500])
            # A (near-)duplicate's claims stay: its fault is known to lead where an existing task is.
            if exc.reason not in ("duplicate", "near-duplicate"):
                self._release(reserved)
        except Exception as exc:  # one bad attempt must not end a long run; its reason is logged
            entry.update(status="rejected", reason="error", detail=f"{type(exc).__name__}: {exc}"[:500])
            self._release(reserved)
        entry.update(
            seconds=round(time.monotonic() - started, 2),
            at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        self._save_conversation(entry)
        self._record(entry)
        return entry

    def _save_conversation(self, entry: dict) -> None:
        """An LLM inverter's conversation for this attempt, appended to `conversations.jsonl` beside the journal
        (keyed by gold and index, as the journal entry is)."""
        take = getattr(self.inverter, "take_conversation", None)
        messages = take() if callable(take) else None
        if not messages:
            return
        line = {"gold": entry["gold"], "index": entry["index"], "status": entry.get("status"),
                "reason": entry.get("reason"), "task_id": entry.get("task_id"), "messages": messages}  # fmt: skip
        with self.lock, open(self.journal_path.with_name(CONVERSATIONS), "a") as handle:
            handle.write(json.dumps(line) + "\n")

    def run(
        self, n: int, workers: int = 1, budget: Budget | None = None, on_entry: Callable | None = None
    ) -> Summary:
        """Attempt until the journal holds `n` accepted tasks, the budget is spent, or `stop` is set."""
        budget = budget or Budget()
        summary = Summary(total_accepted=self.total_accepted)
        started = time.monotonic()
        pending = self._schedule()

        def spent() -> bool:
            over_time = budget.minutes is not None and time.monotonic() - started > budget.minutes * 60
            over_attempts = budget.attempts is not None and summary.attempts >= budget.attempts
            return over_time or over_attempts or summary.total_accepted >= n or self.stop.is_set()

        barren = 0  # consecutive attempts that found nothing new: the golds' fault space is used up
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                running = set()
                while True:
                    if barren >= MAX_BARREN_ATTEMPTS:
                        self.say(f"stopping: {barren} attempts in a row proposed nothing new")
                        self.stop.set()
                    # At most as many attempts in flight as tasks still wanted: `n` is exact, never overshot
                    # by attempts that all succeed at once (each one that fails makes room for another).
                    while (
                        not spent()
                        and len(running) < min(workers, n - summary.total_accepted)
                        and (nxt := next(pending, None))
                    ):
                        if budget.attempts is not None and summary.attempts + len(running) >= budget.attempts:
                            break
                        running.add(pool.submit(self.attempt, *nxt))
                    if not running:
                        break
                    finished, running = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        entry = future.result()
                        summary.attempts += 1
                        if entry["status"] == "accepted":
                            summary.accepted += 1
                            summary.total_accepted += 1
                        else:
                            summary.reasons[entry["reason"]] += 1
                        barren = barren + 1 if entry.get("reason") in ("duplicate", "no-proposal") else 0
                        if on_entry:
                            on_entry(entry, summary)
        except KeyboardInterrupt:
            self.stop.set()
            raise
        finally:
            summary.seconds = time.monotonic() - started
            self.close()
        return summary

    def _schedule(self):
        """(gold, index) pairs round-robin over the healthy golds, skipping those in the journal; golds with slow
        tests take part every `stride` rounds only, so time goes where tasks come fastest."""
        strides = self.strides()
        index = 0
        while len(self.unhealthy) < len(self.golds):
            for gold in self.golds:
                if (
                    index % strides[gold.name]
                    or (gold.name, index) in self.done
                    or gold.name in self.unhealthy
                ):
                    continue
                yield gold, index
            index += 1

    def strides(self) -> dict[str, int]:
        """Every how many rounds each gold takes part (1 for golds without a verified test time)."""
        seconds = {}
        for gold in self.golds:
            record = gold.record()
            seconds[gold.name] = record.test_seconds if record else None
        known = sorted(s for s in seconds.values() if s)
        median = known[len(known) // 2] if known else None
        return {
            name: 1 if not s or not median else max(1, min(MAX_STRIDE, int(s / (2 * median) + 0.5)))
            for name, s in seconds.items()
        }

    def close(self) -> None:
        """Remove the workspaces' containers and release the output folder."""
        if not self._lock_file.closed:
            self._lock_file.close()
        for ws in self._workspaces:
            ws.close()
        self._workspaces.clear()
