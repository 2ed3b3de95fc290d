"""Problem statements: the symptom a user would report, never the cause or the fix."""

from __future__ import annotations

import random
import re
from collections import Counter

from cligym_env.inversion.families.base import Fault
from cligym_env.testing import TestReport

_EXCEPTION = re.compile(r"\b([A-Z][A-Za-z]+(?:Error|Exception|Warning))\b")
_PHRASES = (
    "Permission denied",
    "command not found",
    "No such file or directory",
    "cannot open shared object file",
    "Too many open files",
    "invalid ELF header",
    "file too short",
    "Name or service not known",
    "certificate verify failed",
    "Read-only file system",
)
_OPENINGS = (
    "The {project} checkout in {workdir} used to pass its whole test suite. Since the machine was changed, "
    "{n_fail} of its {n_total} tests {fail}{example}.",
    "Something in this environment broke {project}: running its tests in {workdir} (`{command}`) now gives "
    "{n_fail} {failures} out of {n_total}{example}.",
    "After some maintenance on this machine, {n_fail} of the {n_total} tests of {project} (in {workdir}) {fail}, "
    "although nobody touched the project's code{example}.",
    "Our CI image for {project} is broken: {n_fail} of {n_total} tests {fail} when we run `{command}` in "
    "{workdir}{example}.",
)
_CLOSINGS = (
    "Find out what changed in the environment and repair it so the whole test suite passes again. Do not modify "
    "the project's source code or its tests.",
    "Please fix the environment (not the project's files) so that every test passes again.",
    "Repair the system so the test suite is green again, without editing anything in {workdir}.",
)


def symptoms_seen(report: TestReport, leak_terms: tuple[str, ...]) -> list[str]:
    """Exception names and error phrases in the test output, most frequent first, none that leaks the fix."""
    text = report.output_tail or ""
    found = Counter(_EXCEPTION.findall(text))
    for phrase in _PHRASES:
        if phrase.lower() in text.lower():
            found[phrase] += 5
    return [s for s, _ in found.most_common(6) if not leaks(s, leak_terms) and s not in ("AssertionError",)][
        :2
    ]


def write_statement(
    project: str,
    workdir: str,
    command: str,
    faults: list[Fault],
    broken: TestReport,
    fail_to_pass: list[str],
    n_total: int,
    rng: random.Random,
) -> tuple[str, str]:
    """(instruction, hint) for a task, from what the broken run showed. Deterministic for a given `rng`."""
    leak_terms = tuple(t for f in faults for t in f.leak_terms)
    examples = [t.split("::")[-1] for t in fail_to_pass[:40] if not leaks(t, leak_terms)]
    example = f" (for example `{rng.choice(examples)}`)" if examples and len(fail_to_pass) < n_total else ""
    seen = symptoms_seen(broken, leak_terms)
    short_command = (
        re.sub(r"\s*(?:2>&1\s*)?\|\s*tee\s+\S+\s*$", "", command)  # the harness's plumbing, not the user's
        .split("--junitxml")[0]
        .replace("-p no:cacheprovider", "")
        .replace(" -q ", " ")
        .strip()
    )
    short_command = re.sub(r"\s+", " ", short_command)
    one = len(fail_to_pass) == 1
    fields = dict(
        project=project, workdir=workdir, command=short_command, n_fail=len(fail_to_pass), n_total=n_total,
        fail="fails" if one else "fail", failures="failure" if one else "failures",
    )  # fmt: skip
    text = rng.choice(_OPENINGS).format(example=example, **fields)
    if len(fail_to_pass) == n_total:
        text += " In fact not a single test passes."
    if seen:
        text += " The failures mention " + " and ".join(f"`{s}`" for s in seen) + "."
    text += "\n\n" + rng.choice(_CLOSINGS).format(**fields)
    hint = " ".join(dict.fromkeys(f.symptom for f in faults))
    return text, hint


def leaks(text: str, leak_terms: tuple[str, ...]) -> list[str]:
    """The leak terms (fix-revealing strings) that occur in `text`, case-insensitively."""
    lowered = text.lower()
    return [t for t in leak_terms if t.lower() in lowered]


LLM_STATEMENT_PROMPT = """\
Write the bug report a developer would file after seeing this, in 2-4 sentences, first person, plain text. \
Describe only what they observe (which command fails, how, which tests); do not guess the cause and do not \
suggest any fix.

Project: {project} (source in {workdir})
Command: {command}
{n_fail} of {n_total} tests fail, for example:
{examples}
End of the test output:
{tail}
"""


class LLMStatementWriter:
    """Problem statements written by a model (`openai` client), leak-checked; the template writer is the fallback."""

    def __init__(self, client, model: str, temperature: float = 0.7):
        self.client, self.model, self.temperature = client, model, temperature
        self.fallbacks = 0

    def __call__(
        self, project, workdir, command, faults, broken, fail_to_pass, n_total, rng
    ) -> tuple[str, str]:
        instruction, hint = write_statement(
            project, workdir, command, faults, broken, fail_to_pass, n_total, rng
        )
        leak_terms = tuple(t for f in faults for t in f.leak_terms)
        prompt = LLM_STATEMENT_PROMPT.format(
            project=project, workdir=workdir, command=command, n_fail=len(fail_to_pass), n_total=n_total,
            examples="\n".join(fail_to_pass[:5]), tail=(broken.output_tail or "")[-1500:],
        )  # fmt: skip
        try:
            reply = self.client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": prompt}], temperature=self.temperature
            )
            text = (reply.choices[0].message.content or "").strip()
        except Exception:  # any endpoint failure: the template statement stands
            text = ""
        if not text or leaks(text, leak_terms) or len(text) > 2000:
            self.fallbacks += 1
            return instruction, hint
        closing = "Repair the environment so the whole test suite passes again, without editing the project's files."
        return f"{text}\n\n{closing}", hint
