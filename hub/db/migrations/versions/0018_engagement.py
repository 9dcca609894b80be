"""Engagement: opens and clicks on the record, who may be tracked, and A/B variants.

- `engagements`: the first open or click of each delivery, per link and per person/machine
  flag; cascades with the delivery and the contact, so an erasure takes it too.
- `topics.tracking` / `topics.track_sms`: on for existing marketing topics, off for
  transactional ones (as new topics get by default).
- `contact_preferences.tracking_off`: the person said no.
- `notifications.tracking`, `campaigns.tracking`: a campaign's choice over its topic's.
- `campaigns.variants`, `campaigns.ab`, `notifications.arm`: A/B tests.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    for name in ("tracking", "track_sms"):
        op.add_column(
            "topics", sa.Column(name, sa.Boolean(), nullable=False, server_default=sa.false())
        )
    topics = sa.table("topics", sa.column("tracking", sa.Boolean), sa.column("category"))
    op.execute(topics.update().where(topics.c.category == "marketing").values(tracking=True))
    op.add_column(
        "contact_preferences",
        sa.Column("tracking_off", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.add_column("notifications", sa.Column("tracking", sa.Boolean()))
    op.add_column("notifications", sa.Column("arm", sa.String(16)))
    op.add_column("campaigns", sa.Column("tracking", sa.Boolean()))
    op.add_column("campaigns", sa.Column("variants", JSON))
    op.add_column("campaigns", sa.Column("ab", JSON))
    op.create_table(
        "engagements",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "delivery_id",
            ID,
            sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column(
            "notification_id",
            ID,
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "contact_id",
            ID,
            sa.ForeignKey("contacts.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("link_index", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(2048)),
        sa.Column("machine", sa.Boolean(), nullable=False),
        sa.Column("machine_reason", sa.String(32)),
        sa.Column("agent", sa.String(32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("delivery_id", "kind", "link_index", "machine"),
    )
    op.create_index(
        "ix_engagements_notification_id_kind", "engagements", ["notification_id", "kind"]
    )


def downgrade() -> None:
    op.drop_index("ix_engagements_notification_id_kind", table_name="engagements")
    op.drop_table("engagements")
    for table, column in (
        ("campaigns", "ab"),
        ("campaigns", "variants"),
        ("campaigns", "tracking"),
        ("notifications", "arm"),
        ("notifications", "tracking"),
        ("contact_preferences", "tracking_off"),
        ("topics", "track_sms"),
        ("topics", "tracking"),
    ):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
