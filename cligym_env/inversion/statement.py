"""Problem statements: the symptom a user would report, never the cause or the fix.

A statement is put together from independent parts, each drawn with the caller's `rng`, so that statements vary
in voice and shape the way real bug reports do:
- a *form*: a short report, a ticket (Steps to reproduce / Expected / Actual), a CI failure notice, a terse
  one-liner, a chat message;
- a voice (first person or the team), an opening, and a sentence with the true count of failing tests and the
  total;
- which failing tests are named (1-3 real ids when not all fail) and how (inline or as a list);
- an excerpt of the broken run's real output (`error_excerpt`: a few lines around the first error, no line that
  contains a leak term, paths outside the project cut to their last part) and how it is quoted (fenced,
  indented, `>`-quoted, one inline line), or, without one, the exception names the output mentions;
- what was expected, and a closing that asks for an environment repair.

The hint is one phrasing per fault (`Fault.symptom` or one of `Fault.hints`), sometimes with a concrete
observation from the run. `taken` (the instructions of a gold's other tasks) makes the writer draw again until
the text is new: no two tasks on a gold share a statement (`DistinctStatements` keeps the sets for a run).
"""

from __future__ import annotations

import random
import re
import threading
from collections import Counter

from cligym_env.inversion.families.base import Fault
from cligym_env.inversion.symptoms import ERROR_LINE, Observed, error_excerpt, leaks, observe, user_command
from cligym_env.testing import TestReport

__all__ = ["DistinctStatements", "LLMStatementWriter", "leaks", "write_hint", "write_statement"]

MAX_DRAWS = 64
"""Statements drawn before falling back to a marked repeat (with thousands of shapes, never reached in practice)."""


def _voice(rng: random.Random) -> dict[str, str]:
    if rng.random() < 0.5:
        return {"We": "I", "we": "I", "our": "my", "Our": "My", "are": "am"}
    return {"We": "We", "we": "we", "our": "our", "Our": "Our", "are": "are"}


_OPENINGS = (
    "{Our} {project} checkout in {workdir} used to pass its whole test suite.",
    "Since the last change to this machine, the {project} tests in {workdir} no longer pass.",
    "{We} ran `{command}` in {workdir} and the {project} suite is red.",
    "After some maintenance on this box, the tests of {project} started failing, although nobody touched the "
    "project's code.",
    "Something in this environment broke {project}.",
    "The test suite of {project} ({workdir}) fails here; on a clean setup it passes.",
    "{We} {are} seeing test failures in {project} that {we} cannot explain.",
    "Running the {project} tests (`{command}` in {workdir}) no longer works the way it did.",
)
_COUNTS = (
    "{n_fail} of its {n_total} tests {fail}.",
    "`{command}` reports {n_fail} failing {tests} out of {n_total}.",
    "{n_fail} out of {n_total} tests {fail} now.",
    "Out of {n_total} tests, {n_fail} {fail}{rest}.",
    "The run ends with {n_fail} {failures} among {n_total} tests.",
    "{n_fail}/{n_total} tests {fail}.",
)
_COUNTS_PARTIAL = ("Only {n_pass} of the {n_total} tests still pass; {n_fail} {fail}.",)
_COUNTS_ALL = (
    "{n_fail} of {n_total} tests fail: not a single one passes.",
    "Every one of the {n_total} tests fails ({n_fail} {failures}, nothing passes).",
    "All {n_total} tests fail ({n_fail} of {n_total}).",
)
_NAMES_INLINE = (
    "For example `{0}`.",
    "Among them: {all}.",
    "Failing, e.g.: {all}.",
    "One of them is `{0}`.",
)
_NAME_ONE = ("The failing test is `{0}`.", "It is `{0}`.", "Only `{0}` fails.")
_NAMES_LIST = ("Failing tests include:", "Some of the failing tests:", "A few of them:")
_EXCERPT_INTROS = (
    "An excerpt of the output:",
    "From the test log:",
    "The relevant part of the log:",
    "The log shows:",
    "Here is what it prints:",
    "What {we} see:",
)
_SEEN = (
    "The failures mention {seen}.",
    "The output is full of {seen}.",
    "{Our} log shows {seen}.",
)
_EXPECTED = (
    "{We} expected all {n_total} tests to pass, as they do on a fresh setup.",
    "On a clean machine the same checkout passes every test.",
    "Nothing in the repository changed since the last green run.",
    "The project's code and tests have not changed.",
    "",
    "",
)
_CLOSINGS = (
    "Find out what changed in the environment and repair it so the whole test suite passes again. Do not "
    "modify the project's source code or its tests.",
    "Please fix the environment (not the project's files) so that every test passes again.",
    "Repair the system so the test suite is green again, without editing anything in {workdir}.",
    "The fix belongs in the environment: leave {workdir} as it is and get all {n_total} tests passing.",
    "Can you get the suite passing again? The code in {workdir} is fine and must stay untouched.",
    "Make the tests pass again by repairing the machine, not the project: the source and the tests stay as "
    "they are.",
    "Please restore the environment so that `{command}` passes; do not edit the project or its tests.",
    "Get {our} test run green again. Only the environment may change, not the code in {workdir}.",
)
_TICKET_TITLES = (
    "{project}: test suite fails in this environment",
    "Bug: {n_fail} failing tests in {project}",
    "[{project}] tests broken after an environment change",
    "Test failures in {project} ({workdir})",
)
_CI_OPENINGS = (
    "CI for {project} is red.",
    "The nightly test job of {project} failed.",
    "Build failed: `{command}` (in {workdir}) exited non-zero.",
    "{Our} pipeline for {project} broke on the test step, with no change to the code.",
)
_CHAT_OPENINGS = ("Hi,", "Hey team,", "Quick one:", "Hello,", "Heads-up:")


def _join(*parts: str) -> str:
    """Sentences joined by a space; a part starting with a newline opens a paragraph; after a part ending with
    one (a list, a quoted excerpt) the next sentence opens a paragraph too."""
    text = ""
    for part in filter(None, parts):
        if part.startswith("\n"):
            text = text.rstrip("\n") + part
        elif text.endswith("\n"):
            text = text.rstrip("\n") + "\n\n" + part
        else:
            text += (" " if text else "") + part
    return text.strip()


def _count(obs: Observed, rng: random.Random, fields: dict) -> str:
    if obs.all_fail:
        return rng.choice(_COUNTS_ALL).format(**fields)
    return rng.choice(_COUNTS + _COUNTS_PARTIAL).format(**fields)


def _names(obs: Observed, rng: random.Random) -> str:
    """1-3 failing test ids, inline or as a list ('' when every test fails or none may be named)."""
    if not obs.failing or (obs.all_fail and rng.random() < 0.7):
        return ""
    chosen = rng.sample(obs.failing, min(len(obs.failing), rng.choice((1, 1, 2, 3))))
    if rng.random() < 0.35:
        return "\n\n" + rng.choice(_NAMES_LIST) + "\n" + "\n".join(f"- {t}" for t in chosen) + "\n"
    if obs.n_fail == 1:
        return rng.choice(_NAME_ONE).format(chosen[0])
    quoted = [f"`{t}`" for t in chosen]
    joined = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " and " + quoted[-1]
    return rng.choice(_NAMES_INLINE).format(*chosen, all=joined)


def _evidence(obs: Observed, rng: random.Random, fields: dict, inline_only: bool = False) -> str:
    """The excerpt, quoted one of several ways, or the exception names the output mentions, or nothing."""
    if obs.excerpt and rng.random() < 0.85:
        style = "inline" if inline_only else rng.choice(("fenced", "fenced", "indented", "quoted", "inline"))
        if style == "inline":
            line = re.sub(r"^E\s+", "", max(obs.excerpt, key=lambda ln: bool(ERROR_LINE.search(ln))).strip())
            return f"The output says `{line}`." if "`" not in line else ""
        block = {
            "fenced": "```\n" + "\n".join(obs.excerpt) + "\n```",
            "indented": "\n".join("    " + ln for ln in obs.excerpt),
            "quoted": "\n".join("> " + ln for ln in obs.excerpt),
        }[style]
        return "\n\n" + rng.choice(_EXCERPT_INTROS).format(**fields) + "\n\n" + block + "\n"
    if obs.seen and rng.random() < 0.8:
        return rng.choice(_SEEN).format(seen=" and ".join(f"`{s}`" for s in obs.seen), **fields)
    return ""


def _closing(rng: random.Random, f: dict) -> str:
    return "\n\n" + rng.choice(_CLOSINGS).format(**f)


def _report(obs: Observed, rng: random.Random, f: dict) -> str:
    opening, count, names = rng.choice(_OPENINGS).format(**f), _count(obs, rng, f), _names(obs, rng)
    evidence, expected = _evidence(obs, rng, f), rng.choice(_EXPECTED).format(**f)
    return _join(opening, count, names, evidence, "\n\n" + expected if expected else "", _closing(rng, f))


def _ticket(obs: Observed, rng: random.Random, f: dict) -> str:
    expected = rng.choice(("all {n_total} tests pass.", "a green run, as before.", "every test passes."))
    steps = f"1. cd {obs.workdir}\n2. {obs.command}"
    if rng.random() < 0.4:
        steps = f"Run `{obs.command}` in {obs.workdir}."
    head = rng.choice(_TICKET_TITLES).format(**f)
    head += f"\n\nSteps to reproduce:\n{steps}\n\nExpected: {expected.format(**f)}\nActual:"
    return _join(head, _count(obs, rng, f), _names(obs, rng), _evidence(obs, rng, f), _closing(rng, f))


def _ci(obs: Observed, rng: random.Random, f: dict) -> str:
    opening, count, names = rng.choice(_CI_OPENINGS).format(**f), _count(obs, rng, f), _names(obs, rng)
    return _join(opening, count, names, _evidence(obs, rng, f), _closing(rng, f))


def _terse(obs: Observed, rng: random.Random, f: dict) -> str:
    head = f"{obs.project}: {obs.n_fail}/{obs.n_total} tests failing in {obs.workdir} (`{obs.command}`)."
    if rng.random() < 0.5:
        head = f"`{obs.command}` in {obs.workdir}: {obs.n_fail} of {obs.n_total} {obs.project} tests fail."
    names, evidence = _names(obs, rng), _evidence(obs, rng, f, inline_only=True)
    return _join(head, names, evidence, rng.choice(_CLOSINGS).format(**f))


def _chat(obs: Observed, rng: random.Random, f: dict) -> str:
    opening = rng.choice(_CHAT_OPENINGS) + " {we} just ran `{command}` in {workdir} for {project}.".format(
        **f
    )
    count, names, evidence = _count(obs, rng, f), _names(obs, rng), _evidence(obs, rng, f)
    return _join(opening, count, names, evidence, rng.choice(_EXPECTED).format(**f), _closing(rng, f))


_FORMS = (_report, _report, _ticket, _ci, _terse, _chat)


def compose_statement(obs: Observed, rng: random.Random) -> str:
    """One statement: a form, a voice and every part drawn from `rng`."""
    one, n_pass = obs.n_fail == 1, obs.n_total - obs.n_fail
    fields = dict(
        project=obs.project, workdir=obs.workdir, command=obs.command, n_fail=obs.n_fail, n_total=obs.n_total,
        n_pass=n_pass, fail="fails" if one else "fail", failures="failure" if one else "failures",
        tests="test" if one else "tests", rest=f" and the other {n_pass} still pass" if n_pass > 0 else "",
        **_voice(rng),
    )  # fmt: skip
    return rng.choice(_FORMS)(obs, rng, fields)


def _observation(obs: Observed, fail_to_pass: list[str], rng: random.Random) -> str:
    """A concrete, checkable remark about the broken run for the hint ('' when there is none)."""
    groups = Counter(t.split("::")[0] for t in fail_to_pass)
    options = []
    if obs.seen:
        options.append(f"The error the output names most often is `{obs.seen[0]}`.")
    if not obs.all_fail and len(groups) == 1:
        options.append(f"All the failing tests are in `{next(iter(groups))}`.")
    elif not obs.all_fail and len(groups) > 1:
        group, count = groups.most_common(1)[0]
        options.append(f"{count} of the {obs.n_fail} failing tests are in `{group}`.")
    if not obs.all_fail:
        options.append(f"{obs.n_total - obs.n_fail} tests still pass, so the suite itself runs.")
    return rng.choice(options) if options else ""


def write_hint(faults: list[Fault], obs: Observed, fail_to_pass: list[str], rng: random.Random,
               leak_terms: tuple[str, ...] = ()) -> str:  # fmt: skip
    """One phrasing of each fault's symptom (drawn per fault), sometimes with an observation of the run."""
    hint = " ".join(dict.fromkeys(rng.choice((f.symptom, *f.hints)) for f in faults))
    if faults and rng.random() < 0.5:
        extra = _observation(obs, fail_to_pass, rng)
        if extra and not leaks(extra, leak_terms):
            hint += " " + extra
    return hint


def write_statement(
    project: str,
    workdir: str,
    command: str,
    faults: list[Fault],
    broken: TestReport,
    fail_to_pass: list[str],
    n_total: int,
    rng: random.Random,
    taken: set[str] | frozenset[str] | None = None,
    leak_terms: tuple[str, ...] = (),
) -> tuple[str, str]:
    """(instruction, hint) for a task, from what the broken run showed. Deterministic for a given `rng`.

    The faults' leak terms and `leak_terms` are kept out of both (terms the test command itself contains may
    appear where the command is quoted). An instruction in `taken` is drawn again.
    """
    terms = tuple(dict.fromkeys((*(t for f in faults for t in f.leak_terms), *leak_terms)))
    obs = observe(project, workdir, command, broken, fail_to_pass, n_total, terms)
    quotable = tuple(t for t in terms if t.lower() not in obs.command.lower())
    taken = taken or frozenset()
    text = ""
    for _ in range(MAX_DRAWS):
        text = compose_statement(obs, rng)
        if text not in taken and not leaks(text, quotable):
            break
    else:  # every draw was taken or leaked: the plainest statement, marked apart from its twins if need be
        text = compose_statement(Observed(**{**obs.__dict__, "failing": (), "excerpt": (), "seen": ()}), rng)
        base, k = text, 2
        while text in taken:
            text, k = f"{base}\n\n(Reported again, occurrence {k}.)", k + 1
    return text, write_hint(faults, obs, fail_to_pass, rng, terms)


class DistinctStatements:
    """A statement writer that never gives two tasks on one gold the same instruction.

    Wraps a writer that takes `taken=` (`write_statement`, `LLMStatementWriter`); `taken` maps a gold to the
    instructions of its tasks (existing ones included) and grows as statements are handed out. Thread-safe.

    Example:
        >>> writer = DistinctStatements(write_statement, {"click": {"Tests fail."}})
    """

    def __init__(self, writer, taken: dict[str, set[str]]):
        self.writer, self.taken = writer, taken
        self._lock = threading.Lock()

    def __call__(
        self, project, workdir, command, faults, broken, fail_to_pass, n_total, rng
    ) -> tuple[str, str]:
        while True:
            with self._lock:
                seen = frozenset(self.taken.setdefault(project, set()))
            instruction, hint = self.writer(
                project, workdir, command, faults, broken, fail_to_pass, n_total, rng, taken=seen
            )
            with self._lock:  # another attempt on this gold may have taken it meanwhile: then draw again
                if instruction not in self.taken[project]:
                    self.taken[project].add(instruction)
                    return instruction, hint


LLM_STATEMENT_PROMPT = """\
Write the bug report a developer would file after seeing this, in 2-4 sentences, first person, plain text. \
Describe only what they observe (which command fails, how, which tests); do not guess the cause and do not \
suggest any fix. Say how many tests fail out of how many.

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
        self, project, workdir, command, faults, broken, fail_to_pass, n_total, rng, taken=None
    ) -> tuple[str, str]:
        instruction, hint = write_statement(
            project, workdir, command, faults, broken, fail_to_pass, n_total, rng, taken=taken
        )
        leak_terms = tuple(t for f in faults for t in f.leak_terms)
        excerpt = "\n".join(error_excerpt(broken.output_tail or "", leak_terms, workdir, max_lines=12))
        prompt = LLM_STATEMENT_PROMPT.format(
            project=project, workdir=workdir, command=user_command(command), n_fail=len(fail_to_pass),
            n_total=n_total, examples="\n".join(fail_to_pass[:5]), tail=excerpt or "(nothing that names an error)",
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
        if not re.search(rf"\b{len(fail_to_pass)}\b", text) or not re.search(rf"\b{n_total}\b", text):
            text += f" ({len(fail_to_pass)} of {n_total} tests fail.)"
        closing = "Repair the environment so the whole test suite passes again, without editing the project's files."
        text = f"{text}\n\n{closing}"
        if text in (taken or ()):
            self.fallbacks += 1
            return instruction, hint
        return text, hint
