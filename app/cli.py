"""The `connector` command line: serve, migrate, demo, simulator, sync, keys, operator commands."""

from __future__ import annotations

import asyncio
import sys
from enum import StrEnum
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy.exc import SQLAlchemyError  # light; app.cli_operator needs it too

from app.cli_operator import installations_cli, runs_cli, secrets_cli
from app.cli_support import CONTEXT_SETTINGS, database_problem, fail, settings_or_exit
from app.core.errors import ConnectorError

if TYPE_CHECKING:
    from app.core.migrations import Revision

__all__ = ["cli", "database_problem", "fail", "main", "settings_or_exit"]

cli = typer.Typer(
    name="connector",
    help="Procore DMSA connector: install callbacks, encrypted credentials, incremental sync.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings=CONTEXT_SETTINGS,
)
keys_cli = typer.Typer(
    help="Encryption keys of stored secrets.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
migrate_cli = typer.Typer(
    help="Apply the database migrations up to head (`migrate current` only reports).",
    invoke_without_command=True,
    context_settings=CONTEXT_SETTINGS,
)
cli.add_typer(keys_cli, name="keys")
cli.add_typer(migrate_cli, name="migrate")
cli.add_typer(installations_cli, name="installations")
cli.add_typer(runs_cli, name="runs")
cli.add_typer(secrets_cli, name="secrets")


def package_version() -> str:
    """The installed version of the connector."""
    try:
        return version("procore-dmsa-connector")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"connector {package_version()}")
        raise typer.Exit(0)


@cli.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Procore DMSA connector: install callbacks, encrypted credentials, incremental sync."""


class ServeRole(StrEnum):
    """What `serve` runs (the same values as app.main.Role)."""

    all = "all"
    api = "api"
    worker = "worker"


DEFAULT_PORT = 8000


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[
        int | None,
        typer.Option(
            help="TCP port (default 8000; a worker without --port serves its health endpoints "
            "on a free loopback port, so it never clashes with an api on one host)"
        ),
    ] = None,
    admin_port: Annotated[
        int | None,
        typer.Option(
            help="serve the admin API, the console and /metrics only on this port; "
            "--port then serves only callbacks, webhooks, /livez and /readyz"
        ),
    ] = None,
    role: Annotated[
        ServeRole, typer.Option(help="api: HTTP only; worker: scheduler and syncs; all: both")
    ] = ServeRole.all,
    migrate: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="apply migrations")
    ] = True,
) -> None:
    """Run the HTTP API and/or the scheduler and sync workers."""
    if port is None:
        port = 0 if role == ServeRole.worker else DEFAULT_PORT
    if admin_port is not None and admin_port == port:
        fail(f"--admin-port must differ from --port (both are {port})")
    settings = settings_or_exit()  # before importing the app: a bad value fails fast

    import uvicorn

    from app.core.logging import configure_logging
    from app.main import Role, bind_socket, create_app, preflight

    try:
        asyncio.run(preflight(settings, migrate=migrate))
    except ConnectorError as exc:
        fail(exc.message)
    configure_logging(settings.log_level, settings.log_format)
    app = create_app(settings, role=Role(role.value), migrate=False, admin_port=admin_port)
    # Access lines go through our log handler; probes and scrapes are left out (QuietProbes).
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=True)
    try:
        # One server, one lifespan; with --admin-port it listens on two sockets.
        sockets = None
        if admin_port is not None:
            sockets = [bind_socket(host, port), bind_socket(host, admin_port)]
        uvicorn.Server(config).run(sockets=sockets)
    except ConnectorError as exc:
        fail(exc.message)


@migrate_cli.callback()
def migrate(ctx: typer.Context) -> None:
    """Apply the database migrations up to head, saying which ones ran (or that none were
    needed)."""
    if ctx.invoked_subcommand is not None:
        return
    from app.core.migrations import database_revision, upgrade_to_head
    from app.main import preflight

    settings = settings_or_exit()
    try:
        before = asyncio.run(database_revision(settings.database_url))
        pending = _pending_or_exit(before)
        upgrade_to_head(settings.database_url)
    except SQLAlchemyError as exc:
        fail(database_problem(exc))
    except Exception as exc:
        fail(f"migration failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")
    if settings.keyring:  # a migration job without keys migrates only
        try:
            asyncio.run(preflight(settings, migrate=False))
        except ConnectorError as exc:
            fail(exc.message)
    if not pending:
        typer.echo(f"no migration needed: the database is at the latest revision ({before})")
        return
    typer.echo(f"applied {len(pending)} migration(s):")
    for revision in pending:
        typer.echo(f"  {revision.revision}  {revision.title}")
    head = pending[-1].revision
    typer.echo(f"the database is at the latest revision ({head})")


def _pending_or_exit(current: str | None) -> list[Revision]:
    from app.core.migrations import known_revision, revisions_after

    if current is not None and not known_revision(current):
        fail(
            f"the database is at revision {current}, which this version ({package_version()}) "
            "does not know: a newer release migrated it; run that release"
        )
    return revisions_after(current)


@migrate_cli.command("current")
def migrate_current() -> None:
    """Print the database's revision and any pending migrations (exit 1 when some are)."""
    from app.core.migrations import database_revision, head_revision

    settings = settings_or_exit()
    try:
        current = asyncio.run(database_revision(settings.database_url))
    except SQLAlchemyError as exc:
        fail(database_problem(exc))
    pending = _pending_or_exit(current)
    if not pending:
        typer.echo(f"{current} (head)")
        return
    typer.echo(f"{current or 'empty (never migrated)'}; head is {head_revision()}")
    typer.echo(f"{len(pending)} pending migration(s):")
    for revision in pending:
        typer.echo(f"  {revision.revision}  {revision.title}")
    raise typer.Exit(1)


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
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port of the API and login endpoints")] = 8765,
    companies: Annotated[int, typer.Option(help="simulated Procore companies")] = 2,
    projects: Annotated[int, typer.Option(help="projects per company")] = 3,
    records: Annotated[int, typer.Option(help="records per stream and project")] = 50,
    seed: Annotated[int, typer.Option(help="random seed: the same seed, the same data")] = 1,
    client_id: Annotated[
        str | None, typer.Option(help="the simulated app's DMSA client id (default: printed)")
    ] = None,
    client_secret: Annotated[
        str | None, typer.Option(help="the simulated app's DMSA client secret (default: printed)")
    ] = None,
) -> None:
    """Run the bundled Procore API simulator (behaviour options: python -m procore_sim --help)."""
    from procore_sim.cli import run

    run(host, port, companies, projects, records, seed, client_id, client_secret, ctx.args)


@cli.command()
def sync(
    company_id: Annotated[int, typer.Option("--company-id", help="the installation to sync")],
    full_refresh: Annotated[bool, typer.Option(help="re-read everything")] = False,
    migrate: Annotated[
        bool,
        typer.Option(
            "--migrate/--no-migrate",
            help="apply pending database migrations first and say which (the default); "
            "with --no-migrate, sync refuses a database that is not at the latest migration",
        ),
    ] = True,
) -> None:
    """Run one sync of one installation in the foreground, with progress."""
    from app.core.logging import configure_logging
    from app.core.migrations import database_revision, upgrade_to_head
    from app.main import preflight
    from app.scheduling.foreground import run_foreground

    settings = settings_or_exit()
    configure_logging("WARNING", "console")
    try:
        pending = _pending_or_exit(asyncio.run(database_revision(settings.database_url)))
        if pending and not migrate:
            fail(
                f"the database needs {len(pending)} migration(s) "
                f"({', '.join(r.revision for r in pending)}): run `connector migrate` first, "
                "or leave out --no-migrate"
            )
        if pending:
            upgrade_to_head(settings.database_url)
            typer.echo(
                f"applied {len(pending)} migration(s): {', '.join(r.revision for r in pending)}",
                err=True,
            )
        if settings.keyring:  # the same key checks as `serve`
            asyncio.run(preflight(settings, migrate=False))
    except SQLAlchemyError as exc:
        fail(database_problem(exc))
    except ConnectorError as exc:
        fail(exc.message)
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
    """Re-wrap every company's data key under the primary (first) key."""
    from app.credentials.rotation import rotate_all

    settings = settings_or_exit()
    try:
        report = asyncio.run(rotate_all(settings))
    except SQLAlchemyError as exc:
        fail(database_problem(exc))
    except ConnectorError as exc:
        fail(exc.message)
    for line in report.lines():
        typer.echo(line)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
