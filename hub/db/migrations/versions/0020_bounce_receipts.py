"""Bounce and complaint reports count once: `bounce_receipts` keeps each report Hub acted on.

- unique (delivery_id, kind, status): a second copy of a report, or one arriving while the
  first is being recorded, finds the first's row and changes nothing;
- unique (address_hash, soft_day): a soft bounce counts towards suspending its address at
  most once per address and UTC day (NULL for every other receipt, and NULLs never clash).

Soft bounces recorded before this revision were counted from the timeline; they are not
carried over, so an address starts its week afresh.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bounce_receipts",
        sa.Column("id", ID),
        sa.Column(
            "delivery_id",
            ID,
            sa.ForeignKey(
                "deliveries.id",
                ondelete="CASCADE",
                name="fk_bounce_receipts_delivery_id_deliveries",
            ),
            nullable=False,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("soft_day", sa.Date()),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_bounce_receipts"),
        sa.UniqueConstraint("delivery_id", "kind", "status", name="uq_bounce_receipts_delivery_id"),
        sa.UniqueConstraint("address_hash", "soft_day", name="uq_bounce_receipts_address_hash"),
    )


def downgrade() -> None:
    op.drop_table("bounce_receipts")
