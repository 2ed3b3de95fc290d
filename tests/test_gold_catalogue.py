"""The gold catalogue: every spec valid and verified with a runtime probe (no Docker), the result parsers of
the non-Python frameworks on real output, the catalogue table, and a real build + verify of a few golds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cligym_env.errors import SpecError
from cligym_env.gold import Gold, GoldSpec, list_golds, load_gold
from cligym_env.golds.catalogue import (
    CATALOGUE_END,
    CATALOGUE_START,
    catalogue_table,
    replace_between,
)
from cligym_env.testing.parsers import parse_automake, parse_cargo, parse_tap
from cligym_env.testing.report import Outcome

ROOT = Path(__file__).resolve().parent.parent
GOLDS = list_golds(ROOT / "tasks" / "gold")
DATA = Path(__file__).parent / "data" / "results"
# Small golds, one per kind of build, rebuilt and verified for real (slow): PyPI sdist, CPAN via Debian, crate.
SLOW_GOLDS = ["h11", "perl-try-tiny", "rust-strsim"]


@pytest.mark.parametrize("gold", GOLDS, ids=lambda g: g.name)
def test_gold_spec_files_and_record(gold: Gold) -> None:
    spec = gold.spec
    assert "FROM ${CLIGYM_BASE}" in gold.dockerfile.read_text()
    assert spec.results.path in spec.test_command, "the test command writes the results file"
    assert spec.source.pin[1] == spec.version
    if spec.source.kind == "crate":
        assert spec.runtime == "rust" and spec.results.format == "cargo"
    record = gold.record()
    assert record is not None, f"{gold.name}: never verified (run `cligym gold verify {gold.name}`)"
    assert record.gold == gold.name and record.passing and record.n_tests >= len(record.passing)
    assert record.passing == sorted(record.passing)
    assert record.runtime is not None, f"{gold.name}: no runtime probe in verified.json"
    probe = record.runtime
    assert probe.executables and probe.env_vars
    assert all(p.startswith("/") for p in probe.executables + probe.shared_libraries + probe.files_read)
    assert probe.shared_libraries == sorted(probe.shared_libraries)
    if spec.language == "python":
        assert probe.python_packages and probe.modules
        assert spec.source.pypi and spec.package_name.lower().replace("_", "-") in {
            n.lower().replace("_", "-") for n in probe.python_packages
        }


def test_catalogue_size_and_languages() -> None:
    languages = [g.spec.language for g in GOLDS]
    assert len(GOLDS) >= 40
    assert sum(lang == "python" for lang in languages) >= 30
    assert sum(lang != "python" for lang in languages) >= 5


def test_committed_catalogue_is_current() -> None:
    readme = (ROOT / "tasks" / "gold" / "README.md").read_text()
    assert catalogue_table(GOLDS) in readme, (
        "run `cligym gold catalogue --write` and commit tasks/gold/README.md"
    )


def test_replace_between_markers() -> None:
    text = f"head\n{CATALOGUE_START}\nold\n{CATALOGUE_END}\ntail\n"
    assert replace_between(text, CATALOGUE_START, CATALOGUE_END, "new") == (
        f"head\n{CATALOGUE_START}\nnew\n{CATALOGUE_END}\ntail\n"
    )
    assert replace_between("only\n", CATALOGUE_START, CATALOGUE_END, "x").endswith(f"x\n{CATALOGUE_END}\n")


# --- malformed specs: one error naming the file and the field ---------------------------------------------


def _copy(tmp_path: Path, name: str) -> Path:
    dest = tmp_path / name
    shutil.copytree(ROOT / "tasks" / "gold" / name, dest)
    return dest / "gold.yaml"


@pytest.mark.parametrize(
    ("gold", "old", "new", "field"),
    [
        ("rust-semver", "format: cargo", "format: nunit", "results.format"),
        ("perl-try-tiny", "debian: libtry-tiny-perl==0.31-2", "debian: Try::Tiny", "source.debian"),
        ("rust-semver", "runtime: rust", "runtime: ruby", "runtime"),
        ("libyaml", "debs: [autoconf, automake, libtool]", "debs: autoconf", "debs"),
    ],
)
def test_malformed_new_fields_name_file_and_field(tmp_path: Path, gold, old, new, field) -> None:
    spec = _copy(tmp_path, gold)
    assert old in spec.read_text()
    spec.write_text(spec.read_text().replace(old, new))
    with pytest.raises(SpecError) as info:
        load_gold(spec.parent)
    assert str(spec) in str(info.value) and f"field '{field}" in str(info.value)


def test_two_source_kinds_are_refused() -> None:
    data = load_gold(ROOT / "tasks" / "gold" / "rust-semver").spec.model_dump()
    data["source"]["pypi"] = "semver==1.0.23"
    with pytest.raises(ValueError, match="exactly one source kind"):
        GoldSpec.model_validate(data)


def test_version_must_match_the_source(tmp_path: Path) -> None:
    spec = _copy(tmp_path, "rust-strsim")
    spec.write_text(spec.read_text().replace("version: 0.11.1", "version: 0.11.2"))
    with pytest.raises(SpecError, match="differs from the source"):
        load_gold(spec.parent)


# --- parsers, on output captured from the gold images -------------------------------------------------------


def test_tap_parser_on_prove_output() -> None:
    good = parse_tap((DATA / "prove-try-tiny.tap").read_bytes())
    assert good["t/global_destruction_load.t::0"] is Outcome.SKIPPED  # "skipped: Capture::Tiny required"
    assert good["t/given_when.t::2"] is Outcome.PASSED and len(good) == 28
    bad = parse_tap((DATA / "prove-failing.tap").read_bytes())
    assert bad == {
        "t/dies.t::1": Outcome.PASSED,  # 2 and 3 never ran: absent, so they count as failed
        "t/mixed.t::1": Outcome.PASSED,
        "t/mixed.t::2": Outcome.FAILED,
        "t/mixed.t::3": Outcome.SKIPPED,
        "t/mixed.t::4": Outcome.SKIPPED,  # a TODO failure is expected
        "t/skipall.t::0": Outcome.SKIPPED,
    }


def test_cargo_parser_on_cargo_test_output() -> None:
    good = parse_cargo((DATA / "cargo-semver.txt").read_bytes())
    assert good["tests/test_identifier.rs::test_eq"] is Outcome.PASSED
    assert good["tests/test_autotrait.rs::test"] is Outcome.PASSED
    assert all(o is Outcome.PASSED for o in good.values())
    bad = parse_cargo((DATA / "cargo-failing.txt").read_bytes())
    assert bad == {
        "src/lib.rs::adds": Outcome.PASSED,
        "src/lib.rs::breaks": Outcome.FAILED,
        "src/lib.rs::slow": Outcome.SKIPPED,
    }


def test_automake_parser_on_make_check_output() -> None:
    outcomes = parse_automake((DATA / "automake-libyaml.log").read_bytes())
    assert outcomes == {"test-version": Outcome.PASSED, "test-reader": Outcome.PASSED}
    text = b"PASS: a\nFAIL: b\nXFAIL: c\nXPASS: d\nSKIP: e\nERROR: f\n# PASS:  1\n"
    assert parse_automake(text) == {
        "a": Outcome.PASSED, "b": Outcome.FAILED, "c": Outcome.PASSED,
        "d": Outcome.FAILED, "e": Outcome.SKIPPED, "f": Outcome.ERROR,
    }  # fmt: skip


# --- a real build + verify (slow) ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW_GOLDS)
def test_build_and_verify_gold(tmp_path: Path, name: str) -> None:
    from cligym_env.gold_image import verify_gold

    folder = tmp_path / name
    shutil.copytree(ROOT / "tasks" / "gold" / name, folder, ignore=shutil.ignore_patterns("verified.json"))
    gold = load_gold(folder)
    committed = json.loads((ROOT / "tasks" / "gold" / name / "verified.json").read_text())
    record = verify_gold(gold)
    assert (folder / "verified.json").is_file()
    assert set(record.passing) >= set(committed["passing"]) - set(committed["flaky"])
    assert record.runtime and record.runtime.executables
