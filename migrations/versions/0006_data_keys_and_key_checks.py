"""data keys and key checks

Per-company data keys (wrapped by the service keys) and one key-check value per service key.
Existing secrets stay as they are, sealed directly under a service key (`key_id` set,
`data_key_id` NULL), and keep opening: the migration has no keys, so it cannot re-encrypt.
They move under their company's data key when they are next written, when the company is
uninstalled, or when `connector keys rotate` runs (ADR 0010).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 16:40:38.337837
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.core.database

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "key_checks",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("check_value", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", app.core.database.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", name=op.f("pk_key_checks")),
    )
    op.create_table(
        "data_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("nonce", sa.LargeBinary(length=12), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", app.core.database.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.core.database.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["installations.company_id"],
            name=op.f("fk_data_keys_company_id_installations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_data_keys")),
        sa.UniqueConstraint("company_id", name=op.f("uq_data_keys_company_id")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_data_keys_key_id"), ["key_id"], unique=False)

    with op.batch_alter_table("stored_secrets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("data_key_id", sa.Integer(), nullable=True))
        batch_op.alter_column("key_id", existing_type=sa.VARCHAR(length=64), nullable=True)
        batch_op.create_index(
            batch_op.f("ix_stored_secrets_data_key_id"), ["data_key_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_stored_secrets_data_key_id_data_keys"),
            "data_keys",
            ["data_key_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_check_constraint(
            op.f("ck_stored_secrets_one_key"), "(key_id IS NULL) <> (data_key_id IS NULL)"
        )


def downgrade() -> None:
    # Secrets sealed under a data key have no form the old schema can hold, and the migration
    # has no keys to re-encrypt them: refuse rather than drop them.
    sealed_by_data_keys = op.get_bind().scalar(
        sa.text("SELECT count(*) FROM stored_secrets WHERE data_key_id IS NOT NULL")
    )
    if sealed_by_data_keys:
        raise RuntimeError(
            f"{sealed_by_data_keys} stored secret(s) are sealed under data keys; downgrading "
            "below 0005 would lose them (restore a backup taken before the upgrade instead)"
        )
    with op.batch_alter_table("stored_secrets", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_stored_secrets_one_key"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_stored_secrets_data_key_id_data_keys"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_stored_secrets_data_key_id"))
        batch_op.alter_column("key_id", existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.drop_column("data_key_id")

    with op.batch_alter_table("data_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_data_keys_key_id"))

    op.drop_table("data_keys")
    op.drop_table("key_checks")
