"""Encrypted secrets: AES-256-GCM bound to company and kind, key rotation, missing keys."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.core.database import create_engine, make_sessionmaker, unit_of_work
from app.core.errors import ConfigurationError, DecryptionError
from app.core.migrations import upgrade_to_head
from app.core.settings import parse_encryption_keys
from app.credentials import service as secrets
from app.credentials.crypto import Keyring, generate_key
from app.credentials.models import SecretKind, StoredSecret
from app.credentials.rotation import rotate_all
from app.installations.models import Installation
from app.main import Role, start
from tests.factories import make_settings

OLD = generate_key("old")
NEW = generate_key("new")


def keyring(*entries: str) -> Keyring:
    return Keyring(parse_encryption_keys(",".join(entries)))


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[object]:
    await asyncio.to_thread(upgrade_to_head, database_url)
    engine = create_engine(database_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def store(sessions: object, ring: Keyring, company_ids: range, value: str = "s3cret") -> None:
    async with unit_of_work(sessions) as session:  # type: ignore[arg-type]
        for company_id in company_ids:
            session.add(Installation(company_id=company_id, schedule="every 1h", streams="all"))
            await session.flush()
            await secrets.put_secret(
                session, ring, company_id, SecretKind.client_secret, f"{value}-{company_id}"
            )


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


class TestStoredSecrets:
    async def test_rows_swapped_between_companies_do_not_decrypt(self, sessions: object) -> None:
        ring = keyring(OLD)
        await store(sessions, ring, range(1, 3))
        async with unit_of_work(sessions) as session:  # type: ignore[arg-type]
            one, two = (await session.scalars(select(StoredSecret).order_by("company_id"))).all()
            one.nonce, two.nonce = two.nonce, one.nonce
            one.ciphertext, two.ciphertext = two.ciphertext, one.ciphertext
        async with unit_of_work(sessions) as session:  # type: ignore[arg-type]
            for company_id in (1, 2):
                with pytest.raises(DecryptionError, match=f"company {company_id}"):
                    await secrets.get_secret(session, ring, company_id, SecretKind.client_secret)

    async def test_rotate_re_encrypts_everything_in_batches(self, sessions: object) -> None:
        await store(sessions, keyring(OLD), range(1, 8))
        ring = keyring(NEW, OLD)
        moved = await secrets.rotate(sessions, ring, batch_size=3)  # type: ignore[arg-type]
        assert moved == 7
        async with unit_of_work(sessions) as session:  # type: ignore[arg-type]
            rows = (await session.scalars(select(StoredSecret))).all()
            assert {row.key_id for row in rows} == {"new"}
            # The old key can go now: everything opens with the new one alone.
            for company_id in range(1, 8):
                value = await secrets.get_secret(
                    session, keyring(NEW), company_id, SecretKind.client_secret
                )
                assert value == f"s3cret-{company_id}"
        assert await secrets.rotate(sessions, ring, batch_size=3) == 0  # type: ignore[arg-type]

    async def test_check_keys_names_the_missing_key(self, sessions: object) -> None:
        await store(sessions, keyring(OLD), range(1, 2))
        async with unit_of_work(sessions) as session:  # type: ignore[arg-type]
            with pytest.raises(ConfigurationError, match="old"):
                await secrets.check_keys(session, keyring(NEW))
            await secrets.check_keys(session, keyring(NEW, OLD))


class TestStartUp:
    async def test_service_refuses_to_start_without_a_referenced_key(
        self, sessions: object, database_url: str
    ) -> None:
        await store(sessions, keyring(OLD), range(1, 2))
        settings = make_settings(database_url=database_url, encryption_keys=NEW)
        with pytest.raises(ConfigurationError, match="key id\\(s\\) old"):
            await start(settings, Role.api, migrate=False)

    async def test_rotation_refuses_when_a_key_is_missing(
        self, sessions: object, database_url: str
    ) -> None:
        await store(sessions, keyring(OLD), range(1, 2))
        with pytest.raises(ConfigurationError, match="old"):
            await rotate_all(make_settings(database_url=database_url, encryption_keys=NEW))


class TestKeysCommands:
    def test_generate_prints_a_usable_entry(self) -> None:
        result = CliRunner().invoke(cli, ["keys", "generate", "--key-id", "k2026"])
        assert result.exit_code == 0
        (key,) = parse_encryption_keys(result.output.strip())
        assert key.key_id == "k2026"

    def test_rotate_reports_keys_that_are_safe_to_drop(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        asyncio.run(self._seed(database_url))
        monkeypatch.setenv("CONNECTOR_DATABASE_URL", database_url)
        monkeypatch.setenv("CONNECTOR_ENCRYPTION_KEYS", f"{NEW},{OLD}")
        monkeypatch.chdir(tmp_path)  # no stray .env file
        result = CliRunner().invoke(cli, ["keys", "rotate"])
        assert result.exit_code == 0, result.output
        assert "re-encrypted 3 secret(s)" in result.output
        assert "safe to remove): old" in result.output
        assert OLD.split(":")[1] not in result.output and NEW.split(":")[1] not in result.output
        monkeypatch.setenv("CONNECTOR_ENCRYPTION_KEYS", generate_key("other"))
        refused = CliRunner().invoke(cli, ["keys", "rotate"])
        assert refused.exit_code != 0
        assert "new" in refused.output

    @staticmethod
    async def _seed(database_url: str) -> None:
        await asyncio.to_thread(upgrade_to_head, database_url)
        engine = create_engine(database_url)
        try:
            await store(make_sessionmaker(engine), keyring(OLD), range(1, 4))
        finally:
            await engine.dispose()


class TestServeCommand:
    def test_serve_refuses_to_start_naming_the_missing_key(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        asyncio.run(TestKeysCommands._seed(database_url))
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("CONNECTOR_DATABASE_URL", database_url)
        monkeypatch.setenv("CONNECTOR_ENCRYPTION_KEYS", NEW)
        result = CliRunner().invoke(cli, ["serve", "--port", "1"])
        assert result.exit_code == 2
        assert "stored secrets use key id(s) old which are not configured" in result.output
        assert "Traceback" not in result.output
