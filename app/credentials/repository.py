"""Queries of stored_secrets, data_keys and key_checks.

Rows are read as plain records (not ORM objects) and written with single statements, so a
conditional update decides against the row as it is now, never against a cached copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import Table, bindparam, column, delete, select, table, union, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.database import utcnow
from app.credentials.crypto import Sealed
from app.credentials.models import DataKey, KeyCheck, StoredSecret

# The parent table of data keys, named here without importing the installations domain.
_INSTALLATIONS = table("installations", column("company_id"))


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """A stored secret as read, with the wrapped data key sealing it (None: the old format)."""

    id: int
    company_id: int
    kind: str
    key_id: str | None
    data_key_id: int | None
    nonce: bytes
    ciphertext: bytes
    data_key: Sealed | None


@dataclass(frozen=True, slots=True)
class DataKeyRecord:
    """A company's wrapped data key as read."""

    id: int
    company_id: int
    wrapped: Sealed


def _insert(session: AsyncSession, table: Any) -> Any:
    """The dialect's INSERT, which knows ON CONFLICT (SQLite and PostgreSQL both do)."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _secrets_with_data_keys() -> Any:
    return select(
        StoredSecret.id,
        StoredSecret.company_id,
        StoredSecret.kind,
        StoredSecret.key_id,
        StoredSecret.data_key_id,
        StoredSecret.nonce,
        StoredSecret.ciphertext,
        DataKey.key_id,
        DataKey.nonce,
        DataKey.wrapped_key,
    ).outerjoin(DataKey, DataKey.id == StoredSecret.data_key_id)


def _secret_record(row: Any) -> SecretRecord:
    data_key = None if row[4] is None else Sealed(row[7], bytes(row[8]), bytes(row[9]))
    return SecretRecord(
        row[0], row[1], row[2], row[3], row[4], bytes(row[5]), bytes(row[6]), data_key
    )


async def get_many(
    session: AsyncSession, company_ids: Sequence[int], kind: str
) -> list[SecretRecord]:
    """One kind of secret of several companies with their data keys, in one query (list pages)."""
    if not company_ids:
        return []
    rows = await session.execute(
        _secrets_with_data_keys().where(
            StoredSecret.company_id.in_(list(company_ids)), StoredSecret.kind == kind
        )
    )
    return [_secret_record(row) for row in rows]


async def get(session: AsyncSession, company_id: int, kind: str) -> SecretRecord | None:
    """Returns one stored secret of a company with its data key, read in one statement."""
    row = (
        await session.execute(
            _secrets_with_data_keys().where(
                StoredSecret.company_id == company_id, StoredSecret.kind == kind
            )
        )
    ).first()
    return None if row is None else _secret_record(row)


async def exists(session: AsyncSession, company_id: int, kind: str) -> bool:
    """Whether a company has a secret of this kind."""
    found = await session.scalar(
        select(StoredSecret.id).where(
            StoredSecret.company_id == company_id, StoredSecret.kind == kind
        )
    )
    return found is not None


async def of_company(session: AsyncSession, company_id: int) -> list[SecretRecord]:
    """Every stored secret of a company with its data key."""
    rows = await session.execute(
        _secrets_with_data_keys()
        .where(StoredSecret.company_id == company_id)
        .order_by(StoredSecret.id)
    )
    return [_secret_record(row) for row in rows]


async def upsert(
    session: AsyncSession,
    company_id: int,
    kind: str,
    data_key_id: int,
    nonce: bytes,
    ciphertext: bytes,
) -> None:
    """Stores or replaces a company's secret of one kind, sealed under data key `data_key_id`."""
    now = utcnow()
    values = {"data_key_id": data_key_id, "key_id": None, "nonce": nonce, "ciphertext": ciphertext}
    statement = _insert(session, StoredSecret).values(
        company_id=company_id, kind=kind, created_at=now, updated_at=now, **values
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["company_id", "kind"], set_={**values, "updated_at": now}
        )
    )


async def reseal_if_unchanged(
    session: AsyncSession, record: SecretRecord, data_key_id: int, nonce: bytes, ciphertext: bytes
) -> bool:
    """Replaces a secret's ciphertext only if it is still the one read (no concurrent change)."""
    result = await session.execute(
        update(StoredSecret)
        .where(
            StoredSecret.id == record.id,
            StoredSecret.nonce == record.nonce,
            StoredSecret.ciphertext == record.ciphertext,
        )
        .values(
            data_key_id=data_key_id,
            key_id=None,
            nonce=nonce,
            ciphertext=ciphertext,
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delete_for_company(session: AsyncSession, company_id: int) -> int:
    """Deletes every secret of a company; returns how many rows went."""
    result = await session.execute(
        delete(StoredSecret)
        .where(StoredSecret.company_id == company_id)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def delete_kind(session: AsyncSession, company_id: int, kind: str) -> None:
    """Deletes one secret of a company."""
    await session.execute(
        delete(StoredSecret)
        .where(StoredSecret.company_id == company_id, StoredSecret.kind == kind)
        .execution_options(synchronize_session=False)
    )


async def old_format_after(
    session: AsyncSession, after_id: int, limit: int
) -> Sequence[SecretRecord]:
    """A batch of secrets still sealed directly under a service key, by id (for rotation)."""
    rows = await session.execute(
        _secrets_with_data_keys()
        .where(StoredSecret.data_key_id.is_(None), StoredSecret.id > after_id)
        .order_by(StoredSecret.id)
        .limit(limit)
    )
    return [_secret_record(row) for row in rows]


def _data_key_record(row: Any) -> DataKeyRecord:
    return DataKeyRecord(row[0], row[1], Sealed(row[2], bytes(row[3]), bytes(row[4])))


_DATA_KEY_COLUMNS = (
    DataKey.id,
    DataKey.company_id,
    DataKey.key_id,
    DataKey.nonce,
    DataKey.wrapped_key,
)


async def data_key(
    session: AsyncSession, company_id: int, *, lock: Literal["use", "replace"] | None = None
) -> DataKeyRecord | None:
    """A company's wrapped data key, locked until commit: `use` keeps it from being replaced
    while a secret is sealed with it, `replace` waits for those writers.

    PostgreSQL: the company's installations row first (FOR NO KEY UPDATE), then FOR KEY SHARE
    (many writers at once) or FOR UPDATE on the key; re-read after a wait, a replaced key is
    gone (READ COMMITTED re-checks the row). Taking the installation first keeps one lock
    order for every writer (installation, data key, secrets): a sync that seals a secret and
    then updates its installation can no longer hold the key while an uninstall, holding the
    installation, waits for it (a deadlock CI met). SQLite has no row locks: both take the
    database's write lock first (a no-op UPDATE), so no other writer can commit between this
    read and this transaction's writes.
    """
    statement = select(*_DATA_KEY_COLUMNS).where(DataKey.company_id == company_id)
    if lock is not None and session.get_bind().dialect.name == "sqlite":
        await session.execute(
            update(DataKey)
            .where(DataKey.company_id == company_id)
            .values(updated_at=DataKey.updated_at)  # changes nothing, not even updated_at
            .execution_options(synchronize_session=False)
        )
    elif lock is not None:
        await session.execute(
            select(_INSTALLATIONS.c.company_id)
            .where(_INSTALLATIONS.c.company_id == company_id)
            .with_for_update(key_share=True)
        )
        if lock == "use":
            statement = statement.with_for_update(read=True, key_share=True)
        else:
            statement = statement.with_for_update()
    row = (await session.execute(statement)).first()
    return None if row is None else _data_key_record(row)


async def lock_company_row(session: AsyncSession, company_id: int) -> None:
    """FOR KEY SHARE on the company's installations row, before inserting its data key.

    The data key's foreign key check takes the same lock after the insert; taking it first
    means a writer that holds the installation (install, uninstall) is waited for before
    anything is inserted, so the two never wait on each other.
    """
    await session.execute(
        select(_INSTALLATIONS.c.company_id)
        .where(_INSTALLATIONS.c.company_id == company_id)
        .with_for_update(read=True, key_share=True)
    )


async def insert_data_key_if_absent(
    session: AsyncSession, company_id: int, wrapped: Sealed
) -> None:
    """Adds a company's data key unless one exists (a concurrent writer's key wins)."""
    now = utcnow()
    statement = _insert(session, DataKey).values(
        company_id=company_id,
        key_id=wrapped.key_id,
        nonce=wrapped.nonce,
        wrapped_key=wrapped.ciphertext,
        created_at=now,
        updated_at=now,
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=["company_id"]))


async def delete_data_key(session: AsyncSession, company_id: int) -> int:
    """Deletes a company's data key (the secrets under it go with it); returns rows deleted."""
    result = await session.execute(
        delete(DataKey)
        .where(DataKey.company_id == company_id)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def data_keys_to_rewrap(
    session: AsyncSession, primary_id: str, after_id: int, limit: int
) -> Sequence[DataKeyRecord]:
    """A batch of data keys wrapped by another key than the primary, by id (for rotation)."""
    rows = await session.execute(
        select(*_DATA_KEY_COLUMNS)
        .where(DataKey.key_id != primary_id, DataKey.id > after_id)
        .order_by(DataKey.id)
        .limit(limit)
    )
    return [_data_key_record(row) for row in rows]


async def lock_free_data_keys(session: AsyncSession, ids: Sequence[int]) -> set[int]:
    """Locks those of these data keys no other transaction holds (PostgreSQL `FOR NO KEY
    UPDATE SKIP LOCKED`: it never waits); returns their ids. Deleted ones are not returned."""
    rows = await session.scalars(
        select(DataKey.id)
        .where(DataKey.id.in_(ids))
        .with_for_update(key_share=True, skip_locked=True)
    )
    return set(rows)


async def rewrap_if_unchanged(
    session: AsyncSession, rewraps: Sequence[tuple[DataKeyRecord, Sealed]]
) -> int:
    """Re-wraps data keys, each only if its row is still the one read (not shredded or
    replaced meanwhile); one round of statements for the lot. Returns how many changed."""
    if not rewraps:
        return 0
    keys = cast(Table, DataKey.__table__)  # Core: one executemany, no ORM bookkeeping
    statement = (
        update(keys)
        .where(keys.c.id == bindparam("read_id"), keys.c.nonce == bindparam("read_nonce"))
        .values(
            key_id=bindparam("new_key_id"),
            nonce=bindparam("new_nonce"),
            wrapped_key=bindparam("new_wrapped"),
            updated_at=bindparam("now"),
        )
    )
    now = utcnow()
    result = await session.execute(
        statement,
        [
            {
                "read_id": record.id,
                "read_nonce": record.wrapped.nonce,
                "new_key_id": wrapped.key_id,
                "new_nonce": wrapped.nonce,
                "new_wrapped": wrapped.ciphertext,
                "now": now,
            }
            for record, wrapped in rewraps
        ],
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def key_ids_in_use(session: AsyncSession) -> list[str]:
    """Ids of every service key that still wraps a data key or seals an old-format secret."""
    used: Any = union(
        select(DataKey.key_id),
        select(StoredSecret.key_id).where(StoredSecret.key_id.is_not(None)),
    )
    return [key_id for key_id in await session.scalars(used) if key_id is not None]


async def sample_under_key(
    session: AsyncSession, key_id: str
) -> tuple[DataKeyRecord | None, SecretRecord | None]:
    """One data key and one old-format secret under `key_id`, to try the key's bytes on."""
    row = (
        await session.execute(select(*_DATA_KEY_COLUMNS).where(DataKey.key_id == key_id).limit(1))
    ).first()
    secret = (
        await session.execute(
            _secrets_with_data_keys().where(StoredSecret.key_id == key_id).limit(1)
        )
    ).first()
    return (
        None if row is None else _data_key_record(row),
        None if secret is None else _secret_record(secret),
    )


async def key_checks(session: AsyncSession) -> dict[str, Sealed]:
    """Every stored key-check value by key id."""
    rows = await session.execute(select(KeyCheck.key_id, KeyCheck.nonce, KeyCheck.check_value))
    return {row[0]: Sealed(row[0], bytes(row[1]), bytes(row[2])) for row in rows}


async def insert_key_check_if_absent(session: AsyncSession, check: Sealed) -> None:
    """Records a key's check value unless one is stored (the first writer's value wins)."""
    statement = _insert(session, KeyCheck).values(
        key_id=check.key_id,
        nonce=check.nonce,
        check_value=check.ciphertext,
        created_at=utcnow(),
    )
    await session.execute(statement.on_conflict_do_nothing(index_elements=["key_id"]))
