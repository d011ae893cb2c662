"""What every `connector` command shares: one-line failures and settings loading."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

import typer

if TYPE_CHECKING:
    from app.config import Settings

# `-h` works wherever `--help` does (inherited by every sub-command).
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}


def fail(message: str, code: int = 2) -> NoReturn:
    """Prints one clear line to stderr and exits (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit(**overrides: object) -> Settings:
    """Loads settings, turning a bad value into one line that names the variable."""
    from app.config import SettingsError, load_settings  # not at import: `--help` stays light

    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        fail(str(exc))


def database_problem(exc: BaseException) -> str:
    """One line saying the service database cannot be used, without a traceback."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    detail = reason[0][:200] if reason else type(exc).__name__
    return f"CONNECTOR_DATABASE_URL: cannot use the database ({type(exc).__name__}: {detail})"
