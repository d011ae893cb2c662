"""Applies and inspects Alembic migrations programmatically (works from any working directory)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.ext.asyncio import AsyncEngine

import migrations
from app.core.database import create_engine

SCRIPT_LOCATION = Path(migrations.__file__).resolve().parent


def alembic_config(database_url: str) -> Config:
    """Alembic configuration pointing at the packaged migration scripts."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade_to_head(database_url: str) -> None:
    """Applies every pending migration (blocking; run it in a thread from async code)."""
    command.upgrade(alembic_config(database_url), "head")


def head_revision() -> str | None:
    """The newest revision shipped with this version of the service."""
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None when it was never migrated."""
    async with engine.connect() as connection:
        return await connection.run_sync(
            lambda sync: MigrationContext.configure(sync).get_current_revision()
        )


async def database_revision(database_url: str) -> str | None:
    """The revision of the database at this URL (None when it was never migrated)."""
    engine = create_engine(database_url)
    try:
        return await current_revision(engine)
    finally:
        await engine.dispose()


class Revision(NamedTuple):
    """One migration script: its id and the first line of its description."""

    revision: str
    title: str


def known_revision(revision: str) -> bool:
    """Whether this version of the service ships that revision."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    try:
        return script.get_revision(revision) is not None
    except CommandError:
        return False


def revisions_after(current: str | None) -> list[Revision]:
    """The migrations that take a database at `current` to head, oldest first."""
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    scripts = list(script.iterate_revisions("heads", current or "base"))
    return [
        Revision(s.revision, (s.doc or "").strip().splitlines()[0] if s.doc else "")
        for s in reversed(scripts)
        if s.revision != current
    ]
