"""Result parsers: raw results-file bytes -> {test id: Outcome}. One function per format."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable

from cligym_env.errors import TestRunError
from cligym_env.testing.report import Outcome

Parser = Callable[[bytes], dict[str, Outcome]]


def parse_junit(data: bytes) -> dict[str, Outcome]:
    """JUnit XML (pytest `--junitxml`, and most other runners): id is `classname::name`.

    A testcase with a <failure> is FAILED, with an <error> is ERROR (pytest: error in setup/teardown),
    with <skipped> is SKIPPED, else PASSED. A test listed twice keeps its worst outcome.
    """
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise TestRunError(f"results are not valid JUnit XML: {exc}") from None
    outcomes: dict[str, Outcome] = {}
    rank = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.FAILED: 2, Outcome.ERROR: 3}
    for case in root.iter("testcase"):
        classname, name = case.get("classname", ""), case.get("name", "")
        test_id = f"{classname}::{name}" if classname else name
        tags = {child.tag for child in case}
        if "error" in tags:
            outcome = Outcome.ERROR
        elif "failure" in tags:
            outcome = Outcome.FAILED
        elif "skipped" in tags:
            outcome = Outcome.SKIPPED
        else:
            outcome = Outcome.PASSED
        previous = outcomes.get(test_id)
        if previous is None or rank[outcome] > rank[previous]:
            outcomes[test_id] = outcome
    return outcomes


PARSERS: dict[str, Parser] = {"junit": parse_junit}


def parse_results(fmt: str, data: bytes) -> dict[str, Outcome]:
    """Parse `data` with the parser registered for `fmt`."""
    try:
        parser = PARSERS[fmt]
    except KeyError:
        raise TestRunError(f"no result parser for format '{fmt}' (known: {', '.join(PARSERS)})") from None
    return parser(data)
