"""Migration 0006 on a database holding secrets from before data keys."""

from __future__ import annotations

import asyncio

import pytest
from alembic import command
from sqlalchemy import text

from app.core.database import create_engine, make_sessionmaker, unit_of_work
from app.core.migrations import alembic_config, upgrade_to_head
from app.credentials import service as secrets
from app.credentials.models import SecretKind
from app.credentials.rotation import rotate
from tests.credentials.support import NEW, OLD, data_key_rows, keyring, read, secret_rows
from tests.factories import execute

INSTALLATION = (
    "INSERT INTO installations (company_id, environment, status, source, schedule, streams,"
    " paused, missing_projects, health, created_at, updated_at, version) VALUES"
    " (:c, 'production', 'active', 'callback', 'every 1h', 'all', false, '[]', '{}',"
    " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 1)"
)
SECRET = (
    "INSERT INTO stored_secrets (company_id, kind, key_id, nonce, ciphertext, created_at,"
    " updated_at) VALUES (:c, :kind, :key_id, :nonce, :ct, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
)


class TestMigration0006:
    async def test_secrets_from_0005_keep_opening_and_rotate_moves_them(
        self, database_url: str
    ) -> None:
        await asyncio.to_thread(command.upgrade, alembic_config(database_url), "0005")
        ring = keyring(OLD)
        for company_id in (1, 2):
            execute(database_url, INSTALLATION, c=company_id)
            sealed = ring.seal(f"s3cret-{company_id}", company_id=company_id, kind="client_secret")
            execute(
                database_url,
                SECRET,
                c=company_id,
                kind="client_secret",
                key_id=sealed.key_id,
                nonce=sealed.nonce,
                ct=sealed.ciphertext,
            )
        await asyncio.to_thread(upgrade_to_head, database_url)
        engine = create_engine(database_url)
        try:
            sessions = make_sessionmaker(engine)
            assert await read(sessions, ring, 1, SecretKind.client_secret) == "s3cret-1"
            assert [row["key_id"] for row in await secret_rows(sessions)] == ["old", "old"]
            report = await rotate(sessions, keyring(NEW, OLD))
            assert (report.rewrapped, report.resealed, report.unused) == (0, 2, ["old"])
            assert set(await data_key_rows(sessions)) == {1, 2}
            assert await read(sessions, keyring(NEW), 2, SecretKind.client_secret) == "s3cret-2"
            async with unit_of_work(sessions) as session:
                count = await session.scalar(text("SELECT count(*) FROM key_checks"))
            assert count == 0  # the migration has no keys; start-up writes check values
        finally:
            await engine.dispose()

    async def test_downgrade_refuses_to_drop_data_key_secrets(self, database_url: str) -> None:
        await asyncio.to_thread(upgrade_to_head, database_url)
        engine = create_engine(database_url)
        try:
            sessions = make_sessionmaker(engine)
            execute(database_url, INSTALLATION, c=1)
            async with unit_of_work(sessions) as session:
                await secrets.put_secret(session, keyring(OLD), 1, "client_secret", "s3cret")
        finally:
            await engine.dispose()
        with pytest.raises(RuntimeError, match="sealed under data keys"):
            await asyncio.to_thread(command.downgrade, alembic_config(database_url), "0004")
