"""Inbound receipts (provider ids already acted on, so a replay changes nothing) and early
callbacks (statuses that arrived before their send was recorded).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_receipts",
        sa.Column("provider_id", sa.String(64), primary_key=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_inbound_receipts_received_at", "inbound_receipts", ["received_at"])
    op.create_table(
        "early_callbacks",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("provider_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("error_code", sa.String(32)),
        sa.Column("answered_by", sa.String(32)),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_early_callbacks_provider_id", "early_callbacks", ["provider_id"])
    op.create_index("ix_early_callbacks_received_at", "early_callbacks", ["received_at"])


def downgrade() -> None:
    op.drop_table("early_callbacks")
    op.drop_table("inbound_receipts")
