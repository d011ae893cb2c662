"""The `connector` command line: serve, migrate, demo, simulator, sync, keys."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from app.core.errors import ConnectorError

if TYPE_CHECKING:
    from app.config import Settings

# Start-up time: `connector --help` imports typer and nothing else of weight; settings (and
# with them SQLAlchemy, httpx and the stream catalog) are imported by the commands that use them.

cli = typer.Typer(
    name="connector",
    help="Procore DMSA connector: install callbacks, encrypted credentials, incremental sync.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_cli = typer.Typer(help="Encryption keys of stored secrets.", no_args_is_help=True)
cli.add_typer(keys_cli, name="keys")


def fail(message: str, code: int = 2) -> NoReturn:
    """Prints one clear line to stderr and exits (no traceback)."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def settings_or_exit(**overrides: object) -> Settings:
    """Loads settings, turning a bad value into one line that names the variable."""
    from app.config import SettingsError, load_settings

    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        fail(str(exc))


def database_problem(exc: BaseException) -> str:
    """One line saying the service database cannot be used, without a traceback."""
    reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    detail = reason[0][:200] if reason else type(exc).__name__
    return f"CONNECTOR_DATABASE_URL: cannot use the database ({type(exc).__name__}: {detail})"


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    role: Annotated[str, typer.Option(help="all | api | worker")] = "all",
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="apply migrations")
    ] = True,
) -> None:
    """Run the HTTP API and/or the scheduler and sync workers."""
    import uvicorn

    from app.core.logging import configure_logging
    from app.main import Role, create_app, preflight

    if role not in {r.value for r in Role}:
        fail(f"--role must be all, api or worker (got {role!r})")
    settings = settings_or_exit()
    try:
        asyncio.run(preflight(settings, migrate=migrate))
    except ConnectorError as exc:
        fail(exc.message)
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings, role=Role(role), migrate=False)
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    try:
        uvicorn.Server(config).run()
    except ConnectorError as exc:
        fail(exc.message)


@cli.command()
def migrate() -> None:
    """Apply the database migrations up to head."""
    from app.core.migrations import upgrade_to_head

    settings = settings_or_exit()
    try:
        upgrade_to_head(settings.database_url)
    except Exception as exc:
        fail(f"migration failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    typer.echo("database is at the latest migration")


@cli.command()
def demo(
    keep: Annotated[
        bool, typer.Option(help="keep serving after the report (Ctrl-C to stop)")
    ] = False,
) -> None:
    """Start the simulator and the service on loopback, install a company, sync, report."""
    from app.demo import run_demo

    sys.exit(run_demo(keep_running=keep))


@cli.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def simulator(
    ctx: typer.Context,
    host: str = "127.0.0.1",
    port: int = 8765,
    companies: int = 2,
    projects: int = 3,
    records: int = 50,
    seed: int = 1,
    client_id: Annotated[str | None, typer.Option(help="simulated app's client id")] = None,
    client_secret: Annotated[str | None, typer.Option(help="simulated app's secret")] = None,
) -> None:
    """Run the bundled Procore API simulator (behaviour options: python -m procore_sim --help)."""
    from procore_sim.cli import run

    run(host, port, companies, projects, records, seed, client_id, client_secret, ctx.args)


@cli.command()
def sync(
    company_id: Annotated[int, typer.Option("--company-id", help="the installation to sync")],
    full_refresh: Annotated[bool, typer.Option(help="re-read everything")] = False,
) -> None:
    """Run one sync of one installation in the foreground, with progress."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.core.logging import configure_logging
    from app.scheduling.foreground import run_foreground

    settings = settings_or_exit()
    configure_logging("WARNING", "console")
    try:
        ok = asyncio.run(run_foreground(settings, company_id, full_refresh=full_refresh))
    except SQLAlchemyError as exc:
        fail(database_problem(exc))
    except ConnectorError as exc:
        fail(exc.message)
    raise typer.Exit(0 if ok else 1)


@keys_cli.command("generate")
def keys_generate(
    key_id: Annotated[str | None, typer.Option(help="name of the key")] = None,
) -> None:
    """Print a new key entry for CONNECTOR_ENCRYPTION_KEYS (put it first to make it primary)."""
    from app.credentials.crypto import generate_key

    try:
        typer.echo(generate_key(key_id))
    except ValueError as exc:
        fail(f"--key-id: {exc}")


@keys_cli.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every stored secret under the primary (first) key."""
    from sqlalchemy.exc import SQLAlchemyError

    from app.credentials.rotation import rotate_all

    settings = settings_or_exit()
    try:
        count, unused = asyncio.run(rotate_all(settings))
    except SQLAlchemyError as exc:
        fail(database_problem(exc))
    except ConnectorError as exc:
        fail(exc.message)
    typer.echo(f"re-encrypted {count} secret(s) under the primary key")
    if unused:
        typer.echo(f"keys no longer referenced (safe to remove): {', '.join(unused)}")


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
