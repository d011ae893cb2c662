"""Encrypted secrets: AES-256-GCM bound to company and kind, data keys, missing keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import update
from typer.testing import CliRunner

from app.cli import cli
from app.core.database import create_engine, make_sessionmaker, unit_of_work
from app.core.errors import ConfigurationError, DecryptionError
from app.core.migrations import upgrade_to_head
from app.core.settings import parse_encryption_keys
from app.credentials import service as secrets
from app.credentials.crypto import DataKeyCipher, generate_key
from app.credentials.models import SecretKind, StoredSecret
from app.credentials.rotation import rotate_all
from app.main import Role, start
from tests.credentials.support import (
    NEW,
    OLD,
    Sessions,
    data_key_rows,
    keyring,
    read,
    secret_rows,
    store,
    store_old_format,
)
from tests.factories import make_settings


class TestKeyring:
    def test_round_trip_and_fresh_nonce(self) -> None:
        ring = keyring(OLD)
        one = ring.seal("value", company_id=1, kind="client_secret")
        two = ring.seal("value", company_id=1, kind="client_secret")
        assert one.nonce != two.nonce and one.ciphertext != two.ciphertext
        assert ring.open(one, company_id=1, kind="client_secret") == "value"

    def test_ciphertext_moved_to_another_company_or_kind_fails(self) -> None:
        ring = keyring(OLD)
        sealed = ring.seal("value", company_id=1, kind="client_secret")
        with pytest.raises(DecryptionError, match="does not decrypt"):
            ring.open(sealed, company_id=2, kind="client_secret")
        with pytest.raises(DecryptionError):
            ring.open(sealed, company_id=1, kind="destination_url")

    def test_missing_key_is_named(self) -> None:
        sealed = keyring(OLD).seal("value", company_id=1, kind="client_secret")
        with pytest.raises(DecryptionError, match="'old'"):
            keyring(NEW).open(sealed, company_id=1, kind="client_secret")

    def test_generate_makes_a_32_byte_key(self) -> None:
        (key,) = parse_encryption_keys(generate_key("k9"))
        assert key.key_id == "k9" and len(key.key) == 32
        assert generate_key() != generate_key()

    def test_wrapped_data_key_is_bound_to_its_company(self) -> None:
        ring = keyring(OLD)
        wrapped = ring.wrap_data_key(b"k" * 32, company_id=1)
        assert ring.unwrap_data_key(wrapped, company_id=1) == b"k" * 32
        with pytest.raises(DecryptionError, match="company 2"):
            ring.unwrap_data_key(wrapped, company_id=2)

    def test_data_key_seals_per_company_and_kind(self) -> None:
        data_key = DataKeyCipher(1, 7, b"d" * 32)
        nonce, ciphertext = data_key.seal("value", kind="client_secret")
        assert data_key.open(nonce, ciphertext, kind="client_secret") == "value"
        with pytest.raises(DecryptionError):
            data_key.open(nonce, ciphertext, kind="destination_url")
        with pytest.raises(DecryptionError):
            DataKeyCipher(1, 8, b"d" * 32).open(nonce, ciphertext, kind="client_secret")
        assert "d" * 8 not in repr(data_key)


class TestStoredSecrets:
    async def test_each_company_has_its_own_data_key(self, sessions: Sessions) -> None:
        ring = keyring(OLD)
        await store(sessions, ring, range(1, 3))
        async with unit_of_work(sessions) as session:
            for company_id in (1, 2):
                await secrets.put_secret(
                    session, ring, company_id, SecretKind.destination_url, f"url-{company_id}"
                )
        keys = await data_key_rows(sessions)
        assert set(keys) == {1, 2} and keys[1][0] != keys[2][0]
        assert {key[1] for key in keys.values()} == {"old"}
        assert keys[1][3] != keys[2][3]
        rows = await secret_rows(sessions)
        assert len(rows) == 4
        for row in rows:
            assert row["key_id"] is None and row["data_key_id"] == keys[row["company_id"]][0]
            assert b"s3cret" not in row["ciphertext"] and b"url" not in row["ciphertext"]
        assert await read(sessions, ring, 2, SecretKind.destination_url) == "url-2"

    async def test_rows_swapped_between_companies_do_not_decrypt(self, sessions: Sessions) -> None:
        ring = keyring(OLD)
        await store(sessions, ring, range(1, 3))
        one, two = await secret_rows(sessions)
        async with unit_of_work(sessions) as session:
            for mine, theirs in ((one, two), (two, one)):
                await session.execute(
                    update(StoredSecret)
                    .where(StoredSecret.company_id == mine["company_id"])
                    .values(
                        nonce=theirs["nonce"],
                        ciphertext=theirs["ciphertext"],
                        data_key_id=theirs["data_key_id"],
                    )
                )
        for company_id in (1, 2):
            with pytest.raises(DecryptionError, match=f"company {company_id}"):
                await read(sessions, ring, company_id, SecretKind.client_secret)

    async def test_old_format_secrets_still_open(self, sessions: Sessions) -> None:
        await store_old_format(sessions, keyring(OLD), range(1, 3))
        ring = keyring(NEW, OLD)
        assert await read(sessions, ring, 2, SecretKind.client_secret) == "s3cret-2"
        async with unit_of_work(sessions) as session:  # a write moves it under a data key
            await secrets.put_secret(session, ring, 2, SecretKind.client_secret, "changed")
        rows = {row["company_id"]: row for row in await secret_rows(sessions)}
        assert rows[1]["key_id"] == "old" and rows[1]["data_key_id"] is None
        assert rows[2]["key_id"] is None and rows[2]["data_key_id"] is not None
        assert (await data_key_rows(sessions))[2][1] == "new"
        assert await read(sessions, ring, 2, SecretKind.client_secret) == "changed"

    async def test_check_keys_names_the_missing_key(self, sessions: Sessions) -> None:
        await store(sessions, keyring(OLD), range(1, 2))
        async with unit_of_work(sessions) as session:
            with pytest.raises(ConfigurationError, match="old"):
                await secrets.check_keys(session, keyring(NEW))
            await secrets.check_keys(session, keyring(NEW, OLD))

    async def test_check_keys_sees_old_format_secrets_too(self, sessions: Sessions) -> None:
        await store_old_format(sessions, keyring(OLD), range(1, 2))
        async with unit_of_work(sessions) as session:
            with pytest.raises(ConfigurationError, match="key id\\(s\\) old"):
                await secrets.check_keys(session, keyring(NEW))


class TestStartUp:
    async def test_service_refuses_to_start_without_a_referenced_key(
        self, sessions: Sessions, database_url: str
    ) -> None:
        await store(sessions, keyring(OLD), range(1, 2))
        settings = make_settings(database_url=database_url, encryption_keys=NEW)
        with pytest.raises(ConfigurationError, match="key id\\(s\\) old"):
            await start(settings, Role.api, migrate=False)

    async def test_rotation_refuses_when_a_key_is_missing(
        self, sessions: Sessions, database_url: str
    ) -> None:
        await store(sessions, keyring(OLD), range(1, 2))
        with pytest.raises(ConfigurationError, match="old"):
            await rotate_all(make_settings(database_url=database_url, encryption_keys=NEW))


async def seed(database_url: str) -> None:
    """Three companies: one data-key secret each, plus one old-format secret."""
    await asyncio.to_thread(upgrade_to_head, database_url)
    engine = create_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        await store(sessions, keyring(OLD), range(1, 4))
        await store_old_format(sessions, keyring(OLD), range(4, 5))
    finally:
        await engine.dispose()


class TestKeysCommands:
    def test_generate_prints_a_usable_entry(self) -> None:
        result = CliRunner().invoke(cli, ["keys", "generate", "--key-id", "k2026"])
        assert result.exit_code == 0
        (key,) = parse_encryption_keys(result.output.strip())
        assert key.key_id == "k2026"

    def test_rotate_reports_keys_that_are_safe_to_drop(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        asyncio.run(seed(database_url))
        monkeypatch.setenv("CONNECTOR_DATABASE_URL", database_url)
        monkeypatch.setenv("CONNECTOR_ENCRYPTION_KEYS", f"{NEW},{OLD}")
        monkeypatch.chdir(tmp_path)  # no stray .env file
        result = CliRunner().invoke(cli, ["keys", "rotate"])
        assert result.exit_code == 0, result.output
        assert "re-wrapped 3 data key(s) under the primary key new" in result.output
        assert "moved 1 secret(s) of the old format" in result.output
        assert "safe to remove): old" in result.output
        assert OLD.split(":")[1] not in result.output and NEW.split(":")[1] not in result.output
        again = CliRunner().invoke(cli, ["keys", "rotate"])
        assert "re-wrapped 0 data key(s)" in again.output
        assert "moved 0 secret(s)" in again.output
        monkeypatch.setenv("CONNECTOR_ENCRYPTION_KEYS", generate_key("other"))
        refused = CliRunner().invoke(cli, ["keys", "rotate"])
        assert refused.exit_code == 2
        assert "new" in refused.output


class TestServeCommand:
    def test_serve_refuses_to_start_naming_the_missing_key(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        asyncio.run(seed(database_url))
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("CONNECTOR_DATABASE_URL", database_url)
        monkeypatch.setenv("CONNECTOR_ENCRYPTION_KEYS", NEW)
        result = CliRunner().invoke(cli, ["serve", "--port", "1"])
        assert result.exit_code == 2
        assert "stored secrets use key id(s) old which are not configured" in result.output
        assert "Traceback" not in result.output
