"""Output helpers shared by every CLI command: status lines on stderr, results on stdout (or as JSON)."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console

console = Console(stderr=True)
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON result on stdout.")]


def say(message: str) -> None:
    """A dim status line on stderr (progress callbacks use this)."""
    console.print(f"[dim]{message}[/dim]", highlight=False)


def emit(data, as_json: bool, human: str | None = None) -> None:
    """Print `data` as JSON on stdout when `as_json`, else `human` (rich markup) on stderr."""
    if as_json:
        print(json.dumps(data, indent=1, default=str))
    elif human is not None:
        console.print(human, highlight=False)
