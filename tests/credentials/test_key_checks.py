"""A key id configured with other bytes is refused at start (one line) and fails /readyz."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from app.cli import cli
from app.core.database import create_engine, make_sessionmaker, unit_of_work
from app.core.errors import ConfigurationError
from app.core.migrations import upgrade_to_head
from app.credentials import service as secrets
from app.credentials.models import KeyCheck
from app.main import Role, start
from tests.credentials.support import (
    NEW,
    OLD,
    Sessions,
    keyring,
    same_id_other_bytes,
    store,
    store_old_format,
)
from tests.factories import RunningService, make_settings

WRONG_OLD = same_id_other_bytes(OLD)


async def stored_checks(sessions: Sessions) -> set[str]:
    async with unit_of_work(sessions) as session:
        return set(await session.scalars(select(KeyCheck.key_id)))


async def check(sessions: Sessions, *entries: str) -> None:
    async with unit_of_work(sessions) as session:
        await secrets.check_keys(session, keyring(*entries))


def assert_names_the_key_only(message: str, key_id: str, *entries: str) -> None:
    assert message.startswith("CONNECTOR_ENCRYPTION_KEYS: ") and f"'{key_id}'" in message
    assert "\n" not in message.strip()
    for entry in entries:
        assert entry.split(":")[1] not in message


class TestKeyChecks:
    async def test_first_sight_records_and_other_bytes_are_refused(
        self, sessions: Sessions
    ) -> None:
        await check(sessions, NEW, OLD)
        assert await stored_checks(sessions) == {"new", "old"}
        await check(sessions, NEW, OLD)  # same bytes: fine, nothing rewritten
        await check(sessions, OLD)  # a subset: fine
        with pytest.raises(ConfigurationError) as refused:
            await check(sessions, NEW, WRONG_OLD)
        assert_names_the_key_only(refused.value.message, "old", NEW, OLD, WRONG_OLD)
        with pytest.raises(ConfigurationError, match="'new'"):
            await check(sessions, same_id_other_bytes(NEW))

    async def test_without_any_stored_data_a_wrong_key_is_still_caught(
        self, sessions: Sessions
    ) -> None:
        await check(sessions, OLD)
        with pytest.raises(ConfigurationError, match="key-check value"):
            await check(sessions, WRONG_OLD)

    async def test_upgraded_database_tries_the_key_on_its_secrets_first(
        self, sessions: Sessions
    ) -> None:
        # A database from before key checks: old-format secrets under `old`, no check value.
        await store_old_format(sessions, keyring(OLD), range(1, 3))
        with pytest.raises(ConfigurationError) as refused:
            await check(sessions, WRONG_OLD)
        assert "does not open the secrets stored under it" in refused.value.message
        assert_names_the_key_only(refused.value.message, "old", OLD, WRONG_OLD)
        assert await stored_checks(sessions) == set()  # the wrong bytes were not recorded
        await check(sessions, OLD)
        assert await stored_checks(sessions) == {"old"}

    async def test_a_data_key_under_an_unchecked_key_is_tried_too(self, sessions: Sessions) -> None:
        await store(sessions, keyring(OLD), range(1, 2))
        with pytest.raises(ConfigurationError, match="'old'"):
            await check(sessions, NEW, WRONG_OLD)
        assert await stored_checks(sessions) == set()  # a refused start records nothing

    async def test_service_start_is_refused(self, sessions: Sessions, database_url: str) -> None:
        await check(sessions, OLD)
        settings = make_settings(database_url=database_url, encryption_keys=WRONG_OLD)
        with pytest.raises(ConfigurationError, match="'old'"):
            await start(settings, Role.all, migrate=True)


async def prepared(database_url: str) -> None:
    """A database whose key `old` is known (check value stored) and seals a secret."""
    await asyncio.to_thread(upgrade_to_head, database_url)
    engine = create_engine(database_url)
    try:
        sessions = make_sessionmaker(engine)
        await store(sessions, keyring(OLD), range(1, 2))
        await check(sessions, OLD)
    finally:
        await engine.dispose()


class TestCommands:
    @pytest.mark.parametrize(
        "command",
        [
            ["serve", "--port", "1"],
            ["serve", "--port", "1", "--no-migrate"],
            ["sync", "--company-id", "1"],
            ["keys", "rotate"],
            ["migrate"],
        ],
        ids=lambda command: "-".join(command[:2]),
    )
    def test_wrong_bytes_stop_the_command_with_one_line(
        self,
        command: list[str],
        database_url: str,
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        asyncio.run(prepared(database_url))
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("CONNECTOR_DATABASE_URL", database_url)
        monkeypatch.setenv("CONNECTOR_ENCRYPTION_KEYS", WRONG_OLD)
        result = CliRunner().invoke(cli, command)
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1, result.output
        assert lines[0].startswith("error: ")
        assert_names_the_key_only(lines[0].removeprefix("error: "), "old", OLD, WRONG_OLD)

    def test_right_bytes_pass(
        self, database_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        asyncio.run(prepared(database_url))
        monkeypatch.chdir(tmp_path)
        monkeypatch.setenv("CONNECTOR_DATABASE_URL", database_url)
        monkeypatch.setenv("CONNECTOR_ENCRYPTION_KEYS", f"{NEW},{OLD}")
        assert CliRunner().invoke(cli, ["migrate"]).exit_code == 0
        assert CliRunner().invoke(cli, ["keys", "rotate"]).exit_code == 0


class TestReadiness:
    def test_readyz_fails_when_a_key_no_longer_matches_its_check_value(
        self, database_url: str
    ) -> None:
        settings = make_settings(database_url=database_url)
        key_id = settings.keyring[0].key_id
        with RunningService(settings) as service:
            assert service.anonymous.get("/readyz").json()["checks"]["encryption_key"] == "ok"
            stored = asyncio.run(self._swap_check(database_url, key_id))
            answer = service.anonymous.get("/readyz")
            assert answer.status_code == 503
            message = answer.json()["checks"]["encryption_key"]
            assert key_id in message and "key-check value" in message
            assert settings.encryption_keys is not None
            assert settings.encryption_keys.get_secret_value().split(":")[1] not in answer.text
            asyncio.run(self._restore_check(database_url, key_id, stored))
            assert service.anonymous.get("/readyz").json()["checks"]["encryption_key"] == "ok"

    @staticmethod
    async def _swap_check(database_url: str, key_id: str) -> tuple[bytes, bytes]:
        """Replaces the stored check value with one written by other bytes for the same id."""
        engine = create_engine(database_url)
        try:
            async with unit_of_work(make_sessionmaker(engine)) as session:
                row = (
                    await session.execute(
                        select(KeyCheck.nonce, KeyCheck.check_value).where(
                            KeyCheck.key_id == key_id
                        )
                    )
                ).one()
                other = keyring(same_id_other_bytes(f"{key_id}:x")).key_check(key_id)
                await session.execute(
                    update(KeyCheck)
                    .where(KeyCheck.key_id == key_id)
                    .values(nonce=other.nonce, check_value=other.ciphertext)
                )
                return bytes(row[0]), bytes(row[1])
        finally:
            await engine.dispose()

    @staticmethod
    async def _restore_check(database_url: str, key_id: str, stored: tuple[bytes, bytes]) -> None:
        engine = create_engine(database_url)
        try:
            async with unit_of_work(make_sessionmaker(engine)) as session:
                await session.execute(
                    update(KeyCheck)
                    .where(KeyCheck.key_id == key_id)
                    .values(nonce=stored[0], check_value=stored[1])
                )
        finally:
            await engine.dispose()
