"""Index deliveries by provider id: status callbacks find their delivery by Twilio's SID.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_deliveries_provider_id", "deliveries", ["provider_id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_provider_id", "deliveries")
