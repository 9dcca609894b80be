"""Escalation chains: a notification's steps, and each delivery's place in its chain.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("notifications") as batch:
        batch.add_column(sa.Column("escalation", JSON))
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("step", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_column("step")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("escalation")
