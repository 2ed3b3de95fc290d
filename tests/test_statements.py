"""Problem statements and hints: varied, truthful about the counts, never leaking the fix, never repeated on a gold."""

from __future__ import annotations

import random
import re
from pathlib import Path
from types import SimpleNamespace

from cligym_env.inversion.families.base import Fault
from cligym_env.inversion.statement import DistinctStatements, LLMStatementWriter, leaks, write_statement
from cligym_env.inversion.symptoms import error_excerpt
from cligym_env.testing import TestReport

ROOT = Path(__file__).resolve().parent.parent
COMMAND = "python -m pytest -p no:cacheprovider -q --junitxml=/tmp/cligym-results.xml tests"
# The end of a pytest run in a broken environment, as the harness captures it.
OUTPUT = """\
==================================== ERRORS ====================================
_____________________ ERROR collecting tests/test_yaml.py ______________________
ImportError while importing test module '/testbed/tests/test_yaml.py'.
Traceback:
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
tests/test_yaml.py:4: in <module>
    import yaml._speedups
E   ImportError: /opt/venv/lib/python3.11/site-packages/yaml/_speedups.cpython-311-x86_64-linux-gnu.so: file too short
=================================== FAILURES ===================================
________________________________ test_dump _____________________________________
tests/test_core.py:12: in test_dump
    assert dump(data) == expected
E   ValueError: the accelerated dumper is not available
E   assert False
- generated xml file: /tmp/cligym-results.xml -
=========================== short test summary info ============================
FAILED tests/test_core.py::test_dump - ValueError: the accelerated dumper is not available
3 failed, 40 passed in 0.52s
"""
FAULT = Fault(
    "deleted-native-extension", "compatibility", "pyyaml:_speedups", ("rm -f x",), ("pip install pyyaml==6.0",),
    "Code paths that use a compiled module fail.", ("_speedups", "pyyaml==6.0", "--force-reinstall"),
    hints=("A compiled part of a dependency seems to be gone.", "The pure-Python code paths still work."),
)  # fmt: skip
FAILING = ["tests.test_core::test_dump", "tests.test_core::test_load", "tests.test_yaml::test_safe"]
PASSING = [f"tests.test_other::test_{i}" for i in range(40)]


def _write(seed: int, failing=FAILING, n_total=43, output=OUTPUT, taken=None) -> tuple[str, str]:
    return write_statement("pyyaml", "/testbed", COMMAND, [FAULT], TestReport(output_tail=output), failing,
                           n_total, random.Random(seed), taken=taken)  # fmt: skip


def _skeleton(text: str) -> str:
    for test in FAILING:
        text = text.replace(test, "<test>")
    return re.sub(r"\d+", "N", text)


def test_statements_vary_in_shape() -> None:
    texts = [_write(seed)[0] for seed in range(200)]
    assert len(set(texts)) == 200
    assert len({_skeleton(t) for t in texts}) >= 150, "statements differ in more than counts and test names"
    forms = {
        "ticket": any("Steps to reproduce" in t and "Expected:" in t and "Actual:" in t for t in texts),
        "fenced excerpt": any("```" in t for t in texts),
        "quoted excerpt": any("\n> " in t for t in texts),
        "test list": any("\n- tests." in t for t in texts),
        "first person": any(re.search(r"\bI\b", t) for t in texts),
        "team voice": any(re.search(r"\b[Ww]e\b", t) for t in texts),
        "one paragraph": any("\n" not in t for t in texts),
    }
    assert all(forms.values()), forms


def test_every_statement_states_the_counts_and_names_real_failing_tests() -> None:
    for seed in range(200):
        text, _ = _write(seed)
        assert re.search(r"\b3\b", text) and re.search(r"\b43\b", text), text
        named = [t for t in FAILING if t in text]
        assert 1 <= len(named) <= 3, text
        assert not any(t in text for t in PASSING)
        everything, _ = _write(seed, failing=FAILING, n_total=3)
        assert re.search(r"\b3\b", everything) and not re.search(r"\b43\b", everything)
        one, _ = _write(seed, failing=FAILING[:1])
        assert (
            FAILING[0] in one and re.search(r"\b1\b", one) and not re.search(r"\b1 (tests|failures)\b", one)
        )


def test_no_leak_term_in_statement_hint_or_excerpt() -> None:
    excerpts = 0
    for seed in range(200):
        text, hint = _write(seed)
        assert not leaks(text + hint, FAULT.leak_terms), (seed, text)
        assert "site-packages" not in text and "cligym" not in text  # paths outside the project are trimmed
        excerpts += "accelerated dumper" in text
    assert excerpts > 50, "the real error shows up in most statements"
    lines = error_excerpt(OUTPUT, FAULT.leak_terms, "/testbed")
    assert lines and not any(leaks(line, FAULT.leak_terms) for line in lines)
    assert any("ValueError: the accelerated dumper" in line for line in lines)
    assert error_excerpt(OUTPUT, ("ValueError", "ImportError", "FAILED", "assert"), "/testbed") == []


def test_excerpts_of_cargo_and_prove_output() -> None:
    data = ROOT / "tests" / "data" / "results"
    cargo = error_excerpt((data / "cargo-failing.txt").read_text(), (), "/testbed")
    assert any("panicked at" in line for line in cargo) and len(cargo) <= 6
    prove = error_excerpt((data / "prove-failing.tap").read_text(), ("dies.t",), "/testbed")
    assert prove and not any("dies.t" in line for line in prove)
    coloured = "\x1b[31mFAILED\x1b[0m tests/test_a.py::\x1b[1mtest_x\x1b[0m - KeyError: 'tz'\r\n"
    assert error_excerpt(coloured, (), "/testbed") == ["FAILED tests/test_a.py::test_x - KeyError: 'tz'"]


def test_deterministic_for_a_seed_and_hints_vary_within_a_family() -> None:
    assert _write(7) == _write(7)
    hints = [_write(seed)[1] for seed in range(60)]
    for phrasing in (FAULT.symptom, *FAULT.hints):
        assert any(h.startswith(phrasing) for h in hints), phrasing
    assert any(h not in (FAULT.symptom, *FAULT.hints) for h in hints), "some hints add an observation"


def test_taken_statements_are_drawn_again() -> None:
    first, _ = _write(3)
    again, _ = _write(3, taken={first})
    assert again != first
    taken: set[str] = set()
    for _ in range(150):  # the same input, the same seed: every statement still new
        text, _ = _write(3, taken=taken)
        assert text not in taken
        taken.add(text)


def test_distinct_statements_per_gold() -> None:
    taken: dict[str, set[str]] = {"pyyaml": set()}
    writer = DistinctStatements(write_statement, taken)
    report = TestReport(output_tail=OUTPUT)
    made = [writer("pyyaml", "/testbed", COMMAND, [FAULT], report, FAILING, 43, random.Random(0))[0]
            for _ in range(30)]  # fmt: skip
    assert len(set(made)) == 30 and taken["pyyaml"] == set(made)
    other = writer("other", "/testbed", COMMAND, [FAULT], report, FAILING, 43, random.Random(0))[0]
    assert taken["other"] == {other}, "another gold's statements do not count"


class _Client:
    """An OpenAI-style client that answers every request with `reply` (or raises it)."""

    def __init__(self, reply):
        self.chat = SimpleNamespace(completions=SimpleNamespace(create=self._create))
        self.reply = reply

    def _create(self, **_kwargs):
        if isinstance(self.reply, Exception):
            raise self.reply
        return SimpleNamespace(choices=[SimpleNamespace(message=SimpleNamespace(content=self.reply))])


def test_llm_writer_falls_back_and_states_the_counts() -> None:
    args = ("pyyaml", "/testbed", COMMAND, [FAULT], TestReport(output_tail=OUTPUT), FAILING, 43)
    leaky = LLMStatementWriter(_Client("Reinstall it with --force-reinstall."), "m")
    assert leaky(*args, random.Random(1)) == _write(1) and leaky.fallbacks == 1
    down = LLMStatementWriter(_Client(ConnectionError("down")), "m")
    assert down(*args, random.Random(1)) == _write(1) and down.fallbacks == 1
    terse = LLMStatementWriter(_Client("My test run of pyyaml is red since this morning."), "m")
    text, hint = terse(*args, random.Random(1))
    assert terse.fallbacks == 0 and "3 of 43 tests fail" in text and hint == _write(1)[1]
    assert terse(*args, random.Random(1), taken={text})[0] != text
