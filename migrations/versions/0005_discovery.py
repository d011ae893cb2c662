"""discovery: disconnected installations, absence counting, callback order, skip_until

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.core.database import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("probe_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("probe_interval_seconds", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column("absent_listings", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("last_event_at", UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("pending_full_sync", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("stream_states", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skip_until", UTCDateTime(timezone=True), nullable=True))
    op.create_table(
        "discovery_state",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("pass_started_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("pass_finished_at", UTCDateTime(timezone=True), nullable=True),
        sa.Column("listed", sa.Integer(), nullable=False),
        sa.Column("held_reason", sa.String(length=255), nullable=True),
        sa.Column("held_since", UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_discovery_state")),
    )


def downgrade() -> None:
    op.drop_table("discovery_state")
    with op.batch_alter_table("stream_states", schema=None) as batch_op:
        batch_op.drop_column("skip_until")
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.drop_column("pending_full_sync")
        batch_op.drop_column("last_event_at")
        batch_op.drop_column("absent_listings")
        batch_op.drop_column("probe_interval_seconds")
        batch_op.drop_column("probe_at")
