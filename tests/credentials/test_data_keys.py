"""Crypto-shredding: uninstall and purge destroy the company's data key; copies stay shut."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.core.database import unit_of_work
from app.credentials import service as secrets
from app.credentials.crypto import Keyring
from app.credentials.models import DataKey, SecretKind
from app.credentials.rotation import rotate
from app.installations import service as installations
from procore_sim.server import SimulatorServer
from tests.credentials.support import (
    NEW,
    OLD,
    Sessions,
    add_installations,
    data_key_rows,
    keyring,
    opens_with,
    read,
    secret_rows,
    store_old_format,
    wait_until_blocked,
)
from tests.factories import RunningService, query_rows

CLIENT = SecretKind.client_secret
URL = SecretKind.destination_url
SIGNING = SecretKind.destination_signing_secret


async def install(sessions: Sessions, ring: Keyring, company_id: int) -> None:
    """A company with a client secret, a destination URL and a signing secret."""
    await add_installations(sessions, [company_id])
    async with unit_of_work(sessions) as session:
        await secrets.put_secret(session, ring, company_id, CLIENT, f"client-{company_id}")
        await secrets.put_secret(
            session, ring, company_id, URL, f"postgresql://u:pw@h/{company_id}"
        )
        await secrets.put_secret(session, ring, company_id, SIGNING, f"whsec_{company_id}")


async def uninstall(sessions: Sessions, ring: Keyring, company_id: int) -> None:
    async with unit_of_work(sessions) as session:
        await installations.uninstall(session, ring, company_id, reason="test")


async def data_key_exists(sessions: Sessions, row_id: int) -> bool:
    async with unit_of_work(sessions) as session:
        count = await session.scalar(
            select(func.count()).select_from(DataKey).where(DataKey.id == row_id)
        )
    return bool(count)


class TestUninstallShreds:
    async def test_old_ciphertexts_no_longer_open_with_the_keyring(
        self, sessions: Sessions
    ) -> None:
        ring = keyring(OLD)
        await install(sessions, ring, 1)
        await install(sessions, ring, 2)
        backup = [row for row in await secret_rows(sessions) if row["company_id"] == 1]
        old_key = (await data_key_rows(sessions))[1]
        live = await data_key_rows(sessions)
        assert all(opens_with(ring, row, live) for row in backup)  # the control

        await uninstall(sessions, ring, 1)

        live = await data_key_rows(sessions)
        assert not await data_key_exists(sessions, old_key[0])
        assert live[1][0] != old_key[0]
        for row in backup:  # client secret, destination URL, signing secret as they were
            assert not opens_with(ring, row, live), row["kind"]
        # Uninstall destroys the client secret; what purge needs stays, under the new key.
        assert await read(sessions, ring, 1, CLIENT) is None
        assert await read(sessions, ring, 1, URL) == "postgresql://u:pw@h/1"
        assert await read(sessions, ring, 1, SIGNING) == "whsec_1"
        assert {
            row["data_key_id"] for row in await secret_rows(sessions) if row["company_id"] == 1
        } == {live[1][0]}
        # Another company is untouched.
        assert live[2] == (await data_key_rows(sessions))[2]
        assert await read(sessions, ring, 2, CLIENT) == "client-2"

    async def test_uninstall_moves_old_format_secrets_off_the_service_key(
        self, sessions: Sessions
    ) -> None:
        ring = keyring(OLD)
        await store_old_format(sessions, ring, [1])
        await store_old_format(sessions, ring, [1], "sqlite:///d", kind=URL, new_companies=False)
        backup = await secret_rows(sessions)
        assert {row["key_id"] for row in backup} == {"old"}

        await uninstall(sessions, ring, 1)

        live = await data_key_rows(sessions)
        rows = await secret_rows(sessions)
        assert [(row["kind"], row["key_id"]) for row in rows] == [(URL, None)]
        assert await read(sessions, ring, 1, URL) == "sqlite:///d-1"
        # Copies sealed directly under the service key still open with it: ADR 0010 says why
        # the old key must then be rotated out.
        assert all(opens_with(ring, row, live) for row in backup)
        assert not any(opens_with(keyring(NEW), row, live) for row in backup)

    async def test_backup_copy_is_shut_once_the_old_service_key_is_retired(
        self, sessions: Sessions
    ) -> None:
        await install(sessions, keyring(OLD), 1)
        await install(sessions, keyring(OLD), 2)
        backup_secrets = await secret_rows(sessions)
        backup_keys = await data_key_rows(sessions)
        await uninstall(sessions, keyring(OLD), 1)
        # A backup holds the wrapped data key too: with the service key it still opens...
        assert all(opens_with(keyring(OLD), row, backup_keys) for row in backup_secrets)
        report = await rotate(sessions, keyring(NEW, OLD))
        assert report.unused == ["old"]
        # ...until that key is rotated out: the live data then opens with the new key alone,
        # and nothing in the backup does.
        assert await read(sessions, keyring(NEW), 2, CLIENT) == "client-2"
        assert await read(sessions, keyring(NEW), 1, URL) == "postgresql://u:pw@h/1"
        assert not any(opens_with(keyring(NEW), row, backup_keys) for row in backup_secrets)


class TestPurgeAndReinstall:
    async def test_purge_destroys_the_key_and_reinstall_gets_a_fresh_one(
        self, sessions: Sessions
    ) -> None:
        ring = keyring(OLD)
        await install(sessions, ring, 1)
        backup = await secret_rows(sessions)
        await uninstall(sessions, ring, 1)
        after_uninstall = (await data_key_rows(sessions))[1]
        async with unit_of_work(sessions) as session:
            assert await secrets.destroy_secrets(session, 1) == 2
        assert await data_key_rows(sessions) == {}
        assert await secret_rows(sessions) == []
        async with unit_of_work(sessions) as session:
            await secrets.put_secret(session, ring, 1, CLIENT, "client-again")
        fresh = (await data_key_rows(sessions))[1]
        assert fresh[0] != after_uninstall[0]
        assert await read(sessions, ring, 1, CLIENT) == "client-again"
        live = await data_key_rows(sessions)
        assert not any(opens_with(ring, row, live) for row in backup)

    async def test_reinstall_after_uninstall_uses_a_key_the_old_copies_do_not_open(
        self, sessions: Sessions
    ) -> None:
        ring = keyring(OLD)
        await install(sessions, ring, 1)
        backup = await secret_rows(sessions)
        await uninstall(sessions, ring, 1)
        async with unit_of_work(sessions) as session:
            await secrets.put_secret(session, ring, 1, CLIENT, "client-again")
        assert len(await data_key_rows(sessions)) == 1
        assert await read(sessions, ring, 1, CLIENT) == "client-again"
        live = await data_key_rows(sessions)
        assert not any(opens_with(ring, row, live) for row in backup)

    async def test_a_secret_that_no_longer_opens_is_dropped_not_carried_over(
        self, sessions: Sessions
    ) -> None:
        ring = keyring(OLD)
        await install(sessions, ring, 1)
        async with unit_of_work(sessions) as session:  # the stored URL was damaged
            await session.execute(
                text("UPDATE stored_secrets SET ciphertext = :ct WHERE kind = :kind"),
                {"ct": b"\x00" * 40, "kind": URL.value},
            )
        await uninstall(sessions, ring, 1)
        assert await read(sessions, ring, 1, URL) is None
        assert await read(sessions, ring, 1, SIGNING) == "whsec_1"


@pytest.mark.postgres_only
class TestConcurrentWritersOnPostgres:
    """Real concurrency: each test holds one transaction open until the other one waits."""

    async def test_uninstall_waits_for_a_secret_being_sealed_and_keeps_it(
        self, sessions: Sessions
    ) -> None:
        ring = keyring(OLD)
        await install(sessions, ring, 1)
        writer = sessions()
        await writer.begin()
        await secrets.put_secret(writer, ring, 1, URL, "sqlite:///new.db")
        uninstalling = asyncio.create_task(uninstall(sessions, ring, 1))
        await wait_until_blocked(sessions, uninstalling)
        await writer.commit()
        await writer.close()
        await uninstalling
        # The value sealed under the old key was carried over to the new one, not lost.
        assert await read(sessions, ring, 1, URL) == "sqlite:///new.db"
        assert await read(sessions, ring, 1, CLIENT) is None

    async def test_a_writer_waiting_for_an_uninstall_seals_under_the_new_key(
        self, sessions: Sessions
    ) -> None:
        ring = keyring(OLD)
        await install(sessions, ring, 1)
        old_key = (await data_key_rows(sessions))[1]
        uninstalling = sessions()
        await uninstalling.begin()
        await installations.uninstall(uninstalling, ring, 1, reason="test")

        async def change_destination() -> None:
            async with unit_of_work(sessions) as session:
                await secrets.put_secret(session, ring, 1, URL, "sqlite:///new.db")

        writer = asyncio.create_task(change_destination())
        await wait_until_blocked(sessions, writer)
        await uninstalling.commit()
        await uninstalling.close()
        await writer
        keys = await data_key_rows(sessions)
        assert keys[1][0] != old_key[0]
        assert {row["data_key_id"] for row in await secret_rows(sessions)} == {keys[1][0]}
        assert await read(sessions, ring, 1, URL) == "sqlite:///new.db"
        assert await read(sessions, ring, 1, SIGNING) == "whsec_1"

    async def test_two_writers_of_a_new_company_share_one_data_key(
        self, sessions: Sessions
    ) -> None:
        ring = keyring(OLD)
        await add_installations(sessions, [1])
        first = sessions()
        await first.begin()
        await secrets.put_secret(first, ring, 1, CLIENT, "client")

        async def second_writer() -> None:
            async with unit_of_work(sessions) as session:
                await secrets.put_secret(session, ring, 1, URL, "sqlite:///d.db")

        second = asyncio.create_task(second_writer())
        await wait_until_blocked(sessions, second)
        await first.commit()
        await first.close()
        await second
        keys = await data_key_rows(sessions)
        assert len(keys) == 1
        assert {row["data_key_id"] for row in await secret_rows(sessions)} == {keys[1][0]}
        assert await read(sessions, ring, 1, CLIENT) == "client"
        assert await read(sessions, ring, 1, URL) == "sqlite:///d.db"


def _rows(url: str, company_id: int) -> tuple[list[dict[str, Any]], dict[int, Any]]:
    secret_rows = query_rows(
        url,
        "SELECT company_id, kind, key_id, data_key_id, nonce, ciphertext FROM stored_secrets"
        " WHERE company_id = :c",
        c=company_id,
    )
    names = ("company_id", "kind", "key_id", "data_key_id", "nonce", "ciphertext")
    key_rows = query_rows(url, "SELECT company_id, id, key_id, nonce, wrapped_key FROM data_keys")
    return (
        [
            {
                name: bytes(v) if isinstance(v, memoryview) else v
                for name, v in zip(names, row, strict=True)
            }
            for row in secret_rows
        ],
        {row[0]: (row[1], row[2], bytes(row[3]), bytes(row[4])) for row in key_rows},
    )


class TestThroughTheService:
    def test_admin_uninstall_and_purge_shred_the_company_key(
        self, service: RunningService, sim: SimulatorServer
    ) -> None:
        company_id = sim.state.company_ids()[0]
        client = sim.state.clients()[0]
        assert service.install_and_sync(company_id, **client)["status"] == "succeeded"
        ring = Keyring(service.settings.keyring)
        url = service.settings.database_url
        backup, keys = _rows(url, company_id)
        assert {row["kind"] for row in backup} >= {"client_secret", "destination_url"}
        assert all(opens_with(ring, row, keys) for row in backup)
        old_key_id = keys[company_id][0]

        answer = service.admin.delete(f"/admin/v1/installations/{company_id}")
        assert answer.status_code == 200, answer.text
        _, keys = _rows(url, company_id)
        assert query_rows(url, "SELECT count(*) FROM data_keys WHERE id = :i", i=old_key_id) == [
            (0,)
        ]
        assert not any(opens_with(ring, row, keys) for row in backup)

        purged = service.admin.delete(
            f"/admin/v1/installations/{company_id}", params={"purge": "true"}
        )
        assert purged.status_code == 200, purged.text
        left, keys = _rows(url, company_id)
        assert left == [] and company_id not in keys
