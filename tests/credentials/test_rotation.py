"""`keys rotate` beside a live service: data keys re-wrapped, nothing a writer changed undone."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from app.core.database import unit_of_work
from app.core.errors import DecryptionError
from app.credentials import service as secrets
from app.credentials.crypto import Sealed
from app.credentials.models import SecretKind
from app.credentials.rotation import rotate
from app.installations import service as installations
from tests.conftest import POSTGRES_URL
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
    wait_until_blocked,
)

CLIENT = SecretKind.client_secret
URL = SecretKind.destination_url


class Once:
    """A `before_write` hook: runs `action` once, after rotation read its first `step` batch."""

    def __init__(self, step: str, action: Callable[[], Awaitable[None]]) -> None:
        self.step = step
        self.action = action
        self.calls = 0

    async def __call__(self, step: str) -> None:
        if step == self.step:
            self.calls += 1
            if self.calls == 1:
                await self.action()


class TestRotate:
    async def test_re_wraps_data_keys_and_moves_old_format_in_batches(
        self, sessions: Sessions
    ) -> None:
        await store(sessions, keyring(OLD), range(1, 8))
        await store_old_format(sessions, keyring(OLD), range(8, 12))
        before = {row["company_id"]: row["ciphertext"] for row in await secret_rows(sessions)}
        ring = keyring(NEW, OLD)
        report = await rotate(sessions, ring, batch_size=3)
        assert (report.rewrapped, report.resealed, report.skipped) == (7, 4, 0)
        assert report.unused == ["old"]
        keys = await data_key_rows(sessions)
        assert set(keys) == set(range(1, 12)) and {key[1] for key in keys.values()} == {"new"}
        rows = await secret_rows(sessions)
        # Secrets already under a data key were not re-encrypted: only their key was re-wrapped.
        for row in rows:
            assert row["key_id"] is None and row["data_key_id"] == keys[row["company_id"]][0]
            if row["company_id"] < 8:
                assert row["ciphertext"] == before[row["company_id"]]
        # The old key can go now: everything opens with the new one alone.
        for company_id in range(1, 12):
            assert await read(sessions, keyring(NEW), company_id, CLIENT) == f"s3cret-{company_id}"
        again = await rotate(sessions, ring, batch_size=3)
        assert (again.rewrapped, again.resealed, again.skipped) == (0, 0, 0)


class TestRotationRaces:
    """Each test changes a secret in another transaction after rotation read its batch."""

    async def test_secret_changed_during_old_format_move_survives(self, sessions: Sessions) -> None:
        await store_old_format(sessions, keyring(OLD), range(1, 6))
        ring = keyring(NEW, OLD)

        async def admin_replaces_secret() -> None:
            async with unit_of_work(sessions) as session:
                await secrets.put_secret(session, ring, 3, CLIENT, "changed-while-rotating")

        hook = Once("old_format", admin_replaces_secret)
        report = await rotate(sessions, ring, batch_size=10, before_write=hook)
        assert hook.calls == 1
        assert await read(sessions, ring, 3, CLIENT) == "changed-while-rotating"
        assert (report.resealed, report.skipped) == (4, 1)
        # Everything else was still moved, and nothing needs the old key any more.
        for company_id in (1, 2, 4, 5):
            assert await read(sessions, keyring(NEW), company_id, CLIENT) == f"s3cret-{company_id}"
        assert await read(sessions, keyring(NEW), 3, CLIENT) == "changed-while-rotating"
        assert report.unused == ["old"]

    async def test_secret_changed_during_re_wrap_survives(self, sessions: Sessions) -> None:
        await store(sessions, keyring(OLD), range(1, 6))
        ring = keyring(NEW, OLD)

        async def admin_replaces_secret() -> None:
            async with unit_of_work(sessions) as session:
                await secrets.put_secret(session, ring, 2, CLIENT, "changed-while-rotating")

        report = await rotate(sessions, ring, before_write=Once("data_keys", admin_replaces_secret))
        assert (report.rewrapped, report.skipped) == (5, 0)
        assert await read(sessions, keyring(NEW), 2, CLIENT) == "changed-while-rotating"
        assert await read(sessions, keyring(NEW), 4, CLIENT) == "s3cret-4"

    async def test_uninstall_during_re_wrap_is_not_undone(self, sessions: Sessions) -> None:
        await store(sessions, keyring(OLD), range(1, 4))
        ring = keyring(NEW, OLD)
        async with unit_of_work(sessions) as session:
            await secrets.put_secret(session, ring, 2, URL, "sqlite:///kept.db")
        old_key = (await data_key_rows(sessions))[2]

        async def uninstall_company_2() -> None:
            async with unit_of_work(sessions) as session:
                await installations.uninstall(session, ring, 2, reason="test")

        report = await rotate(sessions, ring, before_write=Once("data_keys", uninstall_company_2))
        assert report.skipped == 1 and report.rewrapped == 2
        keys = await data_key_rows(sessions)
        assert keys[2][0] != old_key[0]  # the shredded key was not written back
        assert await read(sessions, keyring(NEW), 2, URL) == "sqlite:///kept.db"
        assert await read(sessions, ring, 2, CLIENT) is None

    async def test_purge_during_re_wrap_is_not_undone(self, sessions: Sessions) -> None:
        await store(sessions, keyring(OLD), range(1, 4))
        ring = keyring(NEW, OLD)

        async def purge_company_2() -> None:
            async with unit_of_work(sessions) as session:
                await secrets.destroy_secrets(session, 2)

        report = await rotate(sessions, ring, before_write=Once("data_keys", purge_company_2))
        assert report.skipped == 1
        assert set(await data_key_rows(sessions)) == {1, 3}
        assert await read(sessions, ring, 2, CLIENT) is None


@pytest.mark.postgres_only
class TestRotationRacesOnPostgres:
    """Real concurrency, no hook: rotation blocks on the writer's row lock until it commits."""

    async def test_rotation_waiting_on_a_writer_keeps_the_writers_value(
        self, sessions: Sessions
    ) -> None:
        assert POSTGRES_URL
        await store_old_format(sessions, keyring(OLD), range(1, 6))
        ring = keyring(NEW, OLD)
        writer = sessions()
        await writer.begin()
        await secrets.put_secret(writer, ring, 3, CLIENT, "changed-while-rotating")
        rotation = asyncio.create_task(rotate(sessions, ring))
        await wait_until_blocked(sessions, rotation)
        await writer.commit()
        await writer.close()
        report = await rotation
        assert (report.resealed, report.skipped) == (4, 1)
        assert await read(sessions, keyring(NEW), 3, CLIENT) == "changed-while-rotating"
        assert await read(sessions, keyring(NEW), 5, CLIENT) == "s3cret-5"

    async def test_old_format_move_waiting_on_an_uninstall_leaves_its_result(
        self, sessions: Sessions
    ) -> None:
        await store_old_format(sessions, keyring(OLD), range(1, 4))
        await store_old_format(sessions, keyring(OLD), [2], "url", kind=URL, new_companies=False)
        ring = keyring(NEW, OLD)
        uninstall = sessions()
        await uninstall.begin()
        await installations.uninstall(uninstall, ring, 2, reason="test")
        rotation = asyncio.create_task(rotate(sessions, ring))
        await wait_until_blocked(sessions, rotation)
        await uninstall.commit()
        await uninstall.close()
        report = await rotation
        assert (report.resealed, report.skipped) == (2, 2)
        assert await read(sessions, keyring(NEW), 2, URL) == "url-2"
        assert await read(sessions, ring, 2, CLIENT) is None
        assert await read(sessions, keyring(NEW), 3, CLIENT) == "s3cret-3"
        assert report.unused == ["old"]

    async def test_rotation_waiting_on_an_uninstall_does_not_resurrect_its_key(
        self, sessions: Sessions
    ) -> None:
        await store(sessions, keyring(OLD), range(1, 4))
        ring = keyring(NEW, OLD)
        old_key = (await data_key_rows(sessions))[2]
        uninstall = sessions()
        await uninstall.begin()
        await installations.uninstall(uninstall, ring, 2, reason="test")
        rotation = asyncio.create_task(rotate(sessions, ring))
        await wait_until_blocked(sessions, rotation)
        await uninstall.commit()
        await uninstall.close()
        report = await rotation
        assert report.skipped == 1
        assert 2 not in await data_key_rows(sessions)
        # The backed-up wrapped key opens with the old service key only, which can now go.
        assert report.unused == ["old"]
        backup = Sealed(old_key[1], old_key[2], old_key[3])
        with pytest.raises(DecryptionError):
            keyring(NEW).unwrap_data_key(backup, company_id=2)
