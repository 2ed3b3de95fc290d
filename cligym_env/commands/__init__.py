"""CLI command groups kept out of `cligym_env/cli.py`, one module per stage.

Each module defines `register(app: typer.Typer) -> None`, which adds its commands (or sub-apps) to the
top-level app; `cligym_env.cli` calls every function listed in `REGISTRARS`. Shared helpers for output and
errors live in `cligym_env.commands.common`.
"""
