"""Frequency caps per topic: messages per day and per week, and what to do past them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("topics") as batch:
        batch.add_column(sa.Column("cap_per_day", sa.Integer()))
        batch.add_column(sa.Column("cap_per_week", sa.Integer()))
        batch.add_column(
            sa.Column("cap_action", sa.String(8), nullable=False, server_default="defer")
        )


def downgrade() -> None:
    with op.batch_alter_table("topics") as batch:
        batch.drop_column("cap_action")
        batch.drop_column("cap_per_week")
        batch.drop_column("cap_per_day")
