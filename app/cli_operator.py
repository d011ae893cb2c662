"""Operator commands of `connector`: installations, runs and new secrets.

`installations` and `runs` read and change the service database through the same services as
the admin API (`app/admin/operator.py`); no running service is needed to read, and a queued run
is claimed by whichever service (role `all` or `worker`) ticks next.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from app.cli_support import CONTEXT_SETTINGS, database_problem, fail, settings_or_exit
from app.core.errors import ConnectorError, NotFound

if TYPE_CHECKING:
    from app.runs.schemas import SyncRunView
    from app.runtime import Runtime

# The services these commands call (app.admin.operator and what it imports: the ORM, the
# Procore client, ...) are imported when a command runs, not when `connector` starts: every
# other command (serve's bad-setting line, --help) would pay for them otherwise.

T = TypeVar("T")


class InstallationStatusChoice(StrEnum):
    """`--status` of `installations list` (the values of InstallationStatus)."""

    active = "active"
    disconnected = "disconnected"
    uninstalled = "uninstalled"
    credentials_invalid = "credentials_invalid"


class RunStatusChoice(StrEnum):
    """`--status` of `runs list` (the values of RunStatus)."""

    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


installations_cli = typer.Typer(
    help="Installations (Procore companies) as the admin API shows them.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
runs_cli = typer.Typer(
    help="Sync runs: history, one run's figures, queue a run.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)
secrets_cli = typer.Typer(
    help="New secrets for the service's configuration.",
    no_args_is_help=True,
    context_settings=CONTEXT_SETTINGS,
)

JsonOption = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]
ADMIN_TOKEN_BYTES = 32  # 43 URL-safe characters, above the 32-character minimum


def run_with_runtime(action: Callable[[Runtime], Awaitable[T]]) -> T:
    """Runs one action against the service database; any problem is one line and exit 2
    (exit 1 when the thing asked for does not exist)."""

    from app.runtime import build_runtime

    async def go() -> T:
        rt = build_runtime(settings_or_exit())
        try:
            return await action(rt)
        finally:
            await rt.aclose()

    try:
        return asyncio.run(go())
    except NotFound as exc:
        fail(exc.message, code=1)
    except ConnectorError as exc:
        fail(exc.message)
    except SQLAlchemyError as exc:
        fail(database_problem(exc))


def print_json(value: BaseModel | list[BaseModel]) -> None:
    """Prints a model (or a list of models) as indented JSON."""
    items = value if isinstance(value, list) else [value]
    dumped = [item.model_dump(mode="json") for item in items]
    typer.echo(json.dumps(dumped if isinstance(value, list) else dumped[0], indent=2))


def _when(value: object) -> str:
    return "" if value is None else str(value)[:19].replace("T", " ")


@installations_cli.command("list")
def installations_list(
    status: Annotated[
        InstallationStatusChoice | None, typer.Option(help="only installations with this status")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="at most this many")] = 1000,
    as_json: JsonOption = False,
) -> None:
    """List installations: company, status, schedule, destination (redacted), last run."""
    from app.admin import operator
    from app.installations.models import InstallationStatus

    wanted = None if status is None else InstallationStatus(status.value)
    rows = run_with_runtime(lambda rt: operator.list_installations(rt, status=wanted, limit=limit))
    if as_json:
        print_json(list(rows))
        return
    table = Table(title=f"{len(rows)} installation(s)")
    for column in ("company", "name", "status", "schedule", "next run (UTC)", "last run"):
        table.add_column(column)
    for inst in rows:
        last = inst.last_run
        table.add_row(
            str(inst.company_id),
            inst.company_name or "",
            inst.status + (" (paused)" if inst.paused else ""),
            f"{inst.schedule} ({inst.time_zone})" if inst.time_zone != "UTC" else inst.schedule,
            _when(inst.next_run_at),
            f"{last.status} {_when(last.finished_at or last.queued_at)}" if last else "",
        )
    Console().print(table)


@installations_cli.command("show")
def installations_show(
    company_id: Annotated[int, typer.Argument(help="Procore company id")],
    as_json: JsonOption = False,
) -> None:
    """Show one installation with its per-stream state."""
    from app.admin import operator

    detail = run_with_runtime(lambda rt: operator.show_installation(rt, company_id))
    if as_json:
        print_json(detail)
        return
    console = Console()
    console.print(f"company {detail.company_id} {detail.company_name or ''}".strip())
    for label, value in (
        ("status", detail.status + (f" ({detail.status_reason})" if detail.status_reason else "")),
        ("paused", str(detail.paused).lower()),
        ("schedule", f"{detail.schedule} in {detail.time_zone}"),
        ("next run", _when(detail.next_run_at) + " UTC"),
        ("streams", ", ".join(detail.streams)),
        ("destination", detail.destination),
        ("credentials", f"{detail.credentials.source} {detail.credentials.client_id or ''}"),
    ):
        console.print(f"  {label:<12} {value}")
    table = Table(title="streams")
    for column in ("stream", "units", "cursor", "last success", "rows", "written ever"):
        table.add_column(column)
    for name, state in detail.stream_state.items():
        table.add_row(
            name,
            str(len(state.units)),
            _when(state.cursor),
            _when(state.last_success_at),
            "" if state.rows_in_destination is None else str(state.rows_in_destination),
            str(state.records_written_total),
        )
    console.print(table)


@runs_cli.command("list")
def runs_list(
    company_id: Annotated[int | None, typer.Option(help="only this installation's runs")] = None,
    status: Annotated[
        RunStatusChoice | None, typer.Option(help="only runs with this status")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="at most this many")] = 20,
    as_json: JsonOption = False,
) -> None:
    """List sync runs, newest first."""
    from app.admin import operator
    from app.runs.models import RunStatus

    wanted = None if status is None else RunStatus(status.value)
    rows = run_with_runtime(
        lambda rt: operator.list_runs(rt, company_id=company_id, status=wanted, limit=limit)
    )
    if as_json:
        print_json(list(rows))
        return
    table = Table(title=f"{len(rows)} run(s), newest first")
    table.add_column("run", no_wrap=True, min_width=36)  # whole, to copy into `runs show`
    for column in ("company", "status", "trigger", "queued (UTC)", "records", "error"):
        table.add_column(column)
    for run in rows:
        table.add_row(
            run.run_id,
            str(run.company_id),
            run.status,
            run.trigger + (" full" if run.full_refresh else ""),
            _when(run.queued_at),
            str(run.records),
            (run.error or "")[:80],
        )
    Console().print(table)


@runs_cli.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="id of the run")],
    as_json: JsonOption = False,
) -> None:
    """Show one run with its per-stream figures."""
    from app.admin import operator

    run = run_with_runtime(lambda rt: operator.show_run(rt, run_id))
    if as_json:
        print_json(run)
        return
    _print_run(run)


def _print_run(run: SyncRunView) -> None:
    console = Console()
    console.print(f"run {run.run_id} of company {run.company_id}: {run.status}")
    table = Table()
    for column in ("stream", "status", "written", "deleted", "skipped", "requests", "error"):
        table.add_column(column)
    for name, stats in run.streams.items():
        table.add_row(
            name,
            stats.status,
            str(stats.records_written),
            str(stats.records_deleted),
            str(stats.records_skipped),
            str(stats.requests),
            (stats.error or "")[:80],
        )
    console.print(table)
    if run.error:
        console.print(f"error: {run.error}")


@runs_cli.command("trigger")
def runs_trigger(
    company_id: Annotated[int, typer.Argument(help="Procore company id")],
    full_refresh: Annotated[bool, typer.Option(help="re-read everything")] = False,
    wait: Annotated[
        float, typer.Option(min=0, help="wait up to this many seconds for the run to end")
    ] = 0,
) -> None:
    """Queue a sync of one installation; a running service (role all or worker) executes it.

    Exit code 0 when queued (or, with --wait, when it succeeded), 1 when it failed.
    """
    from app.admin import operator

    async def go(rt: Runtime) -> SyncRunView | None:
        queued = await operator.trigger_run(rt, company_id, full_refresh=full_refresh)
        typer.echo(f"queued run {queued.run_id} of company {company_id}")
        if not wait:
            return None
        return await operator.follow_run(rt, queued.run_id, seconds=wait)

    final = run_with_runtime(go)
    if final is None:
        return
    _print_run(final)
    if final.status in ("queued", "running"):
        fail(f"run {final.run_id} is still {final.status} after {wait:g} s", code=1)
    raise typer.Exit(0 if final.status == "succeeded" else 1)


class SecretKind(StrEnum):
    """Which secret `secrets generate --only` prints."""

    callback_secret = "callback-secret"  # noqa: S105 - a name, not a secret
    admin_token = "admin-token"  # noqa: S105 - a name, not a secret


@secrets_cli.command("generate")
def secrets_generate(
    only: Annotated[
        SecretKind | None, typer.Option(help="print just this value, without the variable name")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="write the admin token as NAME:ROLE:TOKEN with this name"),
    ] = None,
    role: Annotated[str, typer.Option(help="role of a named token: viewer, operator or admin")] = (
        "admin"
    ),
) -> None:
    """Print a new callback secret (whsec_...) and a strong admin token, as .env lines."""
    if role not in ("viewer", "operator", "admin"):
        fail(f"--role must be viewer, operator or admin (got {role!r})")
    if name is not None and not name.replace("-", "").replace("_", "").isalnum():
        fail("--name: letters, digits, '-' and '_' only")
    from app.destinations import generate_signing_secret

    callback_secret = generate_signing_secret()
    token = secrets.token_urlsafe(ADMIN_TOKEN_BYTES)
    admin_entry = f"{name}:{role}:{token}" if name else token
    if only == SecretKind.callback_secret:
        typer.echo(callback_secret)
    elif only == SecretKind.admin_token:
        typer.echo(admin_entry)
    else:
        typer.echo(f"CONNECTOR_CALLBACK_SECRET={callback_secret}")
        typer.echo(f"CONNECTOR_ADMIN_TOKENS={admin_entry}")
