"""A contact's own digest time and weekday.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("contact_preferences") as batch:
        batch.add_column(sa.Column("digest_time", sa.Time()))
        batch.add_column(sa.Column("digest_weekday", sa.Integer()))


def downgrade() -> None:
    with op.batch_alter_table("contact_preferences") as batch:
        batch.drop_column("digest_weekday")
        batch.drop_column("digest_time")
