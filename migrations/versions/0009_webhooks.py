"""webhook subscriptions, the event inbox, request budgets; targets on sync runs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 09:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import app.core.database

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

UTC = app.core.database.UTCDateTime()


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("company_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("hook_id", sa.BigInteger(), nullable=True),
        sa.Column("namespace", sa.String(length=64), nullable=True),
        sa.Column("destination_url", sa.Text(), nullable=True),
        sa.Column("streams", sa.Text(), nullable=True),
        sa.Column("covered", sa.JSON(), nullable=False),
        sa.Column("uncovered", sa.JSON(), nullable=False),
        sa.Column("triggers", sa.Integer(), nullable=False),
        sa.Column("checked_at", UTC, nullable=True),
        sa.Column("next_check_at", UTC, nullable=True),
        sa.Column("secret_changed", sa.Boolean(), nullable=False),
        sa.Column("previous_secret_until", UTC, nullable=True),
        sa.Column("reconcile_interval_seconds", sa.Integer(), nullable=True),
        sa.Column("repair_from", UTC, nullable=True),
        sa.Column("last_discarded_id", sa.BigInteger(), nullable=True),
        sa.Column("lease_until", UTC, nullable=True),
        sa.Column("created_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_index(
        op.f("ix_webhook_subscriptions_next_check_at"),
        "webhook_subscriptions",
        ["next_check_at"],
        unique=False,
    )
    op.create_table(
        "webhook_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("dedupe_key", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.BigInteger(), nullable=True),
        sa.Column("company_id", sa.BigInteger(), nullable=False),
        sa.Column("project_id", sa.BigInteger(), nullable=True),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("resource_name", sa.String(length=128), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("event_type", sa.String(length=16), nullable=False),
        sa.Column("occurred_at", UTC, nullable=False),
        sa.Column("received_at", UTC, nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("applied_at", UTC, nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_webhook_events_dedupe_key")),
    )
    op.create_index(
        "ix_webhook_events_open",
        "webhook_events",
        ["company_id", "run_id"],
        unique=False,
        sqlite_where=sa.text("applied_at IS NULL"),
        postgresql_where=sa.text("applied_at IS NULL"),
    )
    op.create_index(
        "ix_webhook_events_received_at", "webhook_events", ["received_at"], unique=False
    )
    op.create_table(
        "request_budgets",
        sa.Column("company_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("hourly_limit", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("learned_at", UTC, nullable=False),
        sa.Column("deferred_run_id", sa.String(length=36), nullable=True),
        sa.PrimaryKeyConstraint("company_id", name=op.f("pk_request_budgets")),
    )
    op.create_table(
        "request_usage",
        sa.Column("company_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("minute", UTC, nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("reconciled", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("company_id", "minute", name=op.f("pk_request_usage")),
    )
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("targets", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("sync_runs", schema=None) as batch_op:
        batch_op.drop_column("targets")
    op.drop_table("request_usage")
    op.drop_table("request_budgets")
    op.drop_index("ix_webhook_events_received_at", table_name="webhook_events")
    op.drop_index(
        "ix_webhook_events_open",
        table_name="webhook_events",
        sqlite_where=sa.text("applied_at IS NULL"),
        postgresql_where=sa.text("applied_at IS NULL"),
    )
    op.drop_table("webhook_events")
    op.drop_index(
        op.f("ix_webhook_subscriptions_next_check_at"), table_name="webhook_subscriptions"
    )
    op.drop_table("webhook_subscriptions")
