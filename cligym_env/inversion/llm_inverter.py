"""The LLM inverter (the paper's method): an agent breaks a live gold container, guided by test results.

The agent sees the gold environment, 1-3 sampled disruption directions, a sample of the tests that pass, and
titles of tasks already made (to go elsewhere). It runs shell commands in a live container of the gold image
(`run_tests` shows which healthy tests now fail) and finishes with `finish` plus a JSON block: the breaking
commands (they become the Dockerfile's RUN lines), a title, a category, the symptom and a recovery script (the
candidate solution.sh). The candidate then goes through the same validation as any other.
"""

from __future__ import annotations

import json
import random
import re
import shlex
import threading

from agents.llm import LLMPolicy
from agents.protocol import PolicyError
from cligym_env.inversion.families import ALL_FAMILIES
from cligym_env.inversion.families.base import Fault
from cligym_env.inversion.pipeline import GoldWorkspace, Proposal, Rejection
from cligym_env.runtime.session import ContainerSession
from cligym_env.task import CATEGORIES, Task
from cligym_env.task_image import run_task_tests

SYSTEM_PROMPT = f"""\
You are a red-team engineer building repair exercises for terminal agents. You work as root in a container \
holding a healthy software project whose unit tests all pass. Your job: break the ENVIRONMENT so that some of \
those tests fail, in a way a skilled engineer could diagnose and repair from the symptoms.

Rules:
- Never modify the project's own files (its source tree and tests); break packages, libraries, executables, \
permissions, configuration, environment (e.g. /etc/profile.d), or system files instead.
- Leave no backup or copy that would give the fix away; the repair must be possible offline (pip has a local \
wheelhouse, apt a local repository).
- Each reply: a short thought, then exactly one shell command in a ```bash block. `run_tests` runs the test \
suite and tells you which healthy tests now fail.
- When tests fail the way you want, reply with a ```bash block containing only `finish`, followed by a ```json \
block with keys: "commands" (list of shell commands that break a FRESH container, in order), "title", \
"category" (one of {", ".join(CATEGORIES)}), "symptom" (what a user notices, without the cause), "recovery" \
(a shell script that repairs it).\
"""
FINAL = re.compile(r"```json\s*\n(.*?)```", re.S)


class LLMInverter:
    """Proposals from a model behind an OpenAI-compatible API; one live gold container per proposal."""

    name = "llm"

    def __init__(self, policy: LLMPolicy, max_turns: int = 20):
        self.policy = policy
        self.model = policy.config.model
        self.max_turns = max_turns
        self._local = threading.local()

    @classmethod
    def from_options(cls, **options) -> LLMInverter:
        options.setdefault("temperature", 0.7)
        options.setdefault("done_command", "finish")
        return cls(LLMPolicy(**{k: v for k, v in options.items() if v is not None}))

    def take_conversation(self) -> list[dict] | None:
        """The messages of this thread's last `propose`, once (the generator saves them beside its journal)."""
        messages, self._local.messages = getattr(self._local, "messages", None), None
        return messages

    def first_message(self, ws: GoldWorkspace, rng: random.Random, made_titles: list[str]) -> str:
        directions = rng.sample(ALL_FAMILIES, k=rng.randint(1, 3))
        tests = rng.sample(ws.record.passing, k=min(12, len(ws.record.passing)))
        spec = ws.gold.spec
        lines = [
            f"Project: {spec.name} {spec.version} ({spec.language}) — {spec.description}",
            f"Source tree: {spec.workdir} (do not touch). Tests: `{spec.test_command}` ({len(ws.record.passing)} pass).",
            "Disruption directions to explore (pick one or combine):",
            *[f"- [{f.category}] {f.direction}" for f in directions],
            "Some of the passing tests:",
            *[f"- {t}" for t in tests],
        ]
        if made_titles:
            lines += [
                "Tasks already made for other attempts (do something different):",
                *[f"- {t}" for t in made_titles[-15:]],
            ]
        return "\n".join(lines)

    def propose(
        self, ws: GoldWorkspace, rng: random.Random, made_titles: list[str] | None = None, feedback=None
    ) -> Proposal:
        """Run the agent loop; raises Rejection for a model that fails, rambles or never finishes.

        `feedback` (what earlier attempts did) is not used: the model sees the titles of tasks already made."""
        messages = self._local.messages = [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": self.first_message(ws, rng, made_titles or [])},
        ]
        session = ContainerSession.start(
            ws.image, workdir=ws.gold.spec.workdir, output_cap=8000, default_timeout=120
        )
        probe_task = Task(ws.gold.path, _probe_spec(ws))
        try:
            for _ in range(self.max_turns):
                try:
                    action = self.policy.act(messages)
                except PolicyError as exc:
                    messages.extend(exc.turns)
                    raise Rejection("llm-error", str(exc)) from None
                messages.extend(action.retries)  # replies without a command and their reminders, marked
                messages.append({"role": "assistant", "content": action.message})
                if action.command.strip() == "finish":
                    return self._final(action.message, ws)
                if action.command.strip() == "run_tests":
                    report = run_task_tests(probe_task, session.container)
                    session.new_shell()  # the test run stopped every process, the shell too
                    failing = sorted(t for t in ws.record.passing if t not in report.passed)
                    observation = (
                        f"{len(failing)} of {len(ws.record.passing)} healthy tests fail now.\n"
                        + "\n".join(failing[:15])
                    )
                else:
                    result = session.run(action.command)
                    observation = f"[exit code {result.exit_code}]\n{result.output}"
                messages.append({"role": "user", "content": observation})
            raise Rejection("llm-no-answer", f"no `finish` within {self.max_turns} turns")
        finally:
            session.close()

    def _final(self, reply: str, ws: GoldWorkspace) -> Proposal:
        match = FINAL.search(reply)
        if not match:
            raise Rejection("llm-malformed", "`finish` without a ```json block")
        try:
            data = json.loads(match.group(1))
            commands = [str(c) for c in data["commands"] if str(c).strip()]
            recovery = str(data["recovery"]).strip()
            category = str(data.get("category", "other"))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise Rejection("llm-malformed", f"final answer is not the JSON asked for: {exc}") from None
        if not commands or not recovery:
            raise Rejection("llm-malformed", "final answer has no commands or no recovery")
        category = category if category in CATEGORIES else "other"
        family = "llm-" + re.sub(r"[^a-z0-9]+", "-", category).strip("-")
        target = " && ".join(commands)
        fault = Fault(
            family=family,
            category=category,
            target=target,
            break_commands=tuple(commands),
            repair_commands=tuple(
                line for line in recovery.splitlines() if line.strip() and not line.startswith("#!")
            ),
            symptom=str(data.get("symptom", "")).strip()
            or "Some tests fail after a change to the environment.",
            leak_terms=recovery_leak_terms(recovery),
        )
        proposal = Proposal.from_faults([fault], ws.gold.name)
        proposal.title = f"{ws.gold.name}: {str(data.get('title') or family)[:120]}"
        return proposal


def recovery_leak_terms(recovery: str) -> tuple[str, ...]:
    """Paths and package names the recovery script touches: a statement naming them gives the fix away."""
    terms = []
    for line in recovery.splitlines():
        try:
            words = shlex.split(line, comments=True)
        except ValueError:
            words = line.split()
        terms += [w for w in words if w.startswith("/") and len(w) > 4]
        for verb in ("install", "reinstall"):
            if verb in words:
                terms += [w.split("==")[0] for w in words[words.index(verb) + 1 :] if not w.startswith("-")]
    return tuple(dict.fromkeys(t for t in terms if len(t) >= 3))


def _probe_spec(ws: GoldWorkspace):
    from cligym_env.task import Provenance, TaskSpec

    spec = ws.gold.spec
    return TaskSpec(
        id=f"{spec.name}-probe",
        gold=spec.name,
        title="probe",
        instruction="-",
        fault_family="-",
        category="other",
        fail_to_pass=["-"],
        workdir=spec.workdir,
        test_command=spec.test_command,
        results=spec.results,
        provenance=Provenance(inverter="llm"),
    )
