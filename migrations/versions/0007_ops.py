"""installation time zone; interval schedules in seconds become minutes

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import math
import re

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_SECONDS = re.compile(r"^every\s+(\d+)\s*s$", re.IGNORECASE)


def upgrade() -> None:
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("time_zone", sa.String(length=64), nullable=False, server_default="UTC")
        )
    # `every <n>s` was accepted although never documented; it is refused now. Stored ones
    # become the nearest whole minute at or above them (at least one minute).
    installations = sa.table(
        "installations", sa.column("company_id", sa.BigInteger), sa.column("schedule", sa.String)
    )
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(installations.c.company_id, installations.c.schedule).where(
            sa.func.lower(installations.c.schedule).like("every%s")
        )
    ).all()
    for company_id, schedule in rows:
        match = _SECONDS.match(schedule.strip())
        if match is None:
            continue
        minutes = max(1, math.ceil(int(match.group(1)) / 60))
        connection.execute(
            installations.update()
            .where(installations.c.company_id == company_id)
            .values(schedule=f"every {minutes}m")
        )


def downgrade() -> None:
    with op.batch_alter_table("installations", schema=None) as batch_op:
        batch_op.drop_column("time_zone")
