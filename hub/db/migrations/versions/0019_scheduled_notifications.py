"""Notifications may wait for a time (`send_at`), be cancelled before they go, and be listed.

- `notifications.send_at`: when a scheduled notification's fan-out starts; until then its
  state is `scheduled` and its `due_at` is that time (the sweeper starts it).
- `notifications.cancelled_at`: when a scheduled (or not yet started) one was cancelled.
- Indexes for `GET /v1/notifications`, newest first, by topic, by source (an API key or
  a campaign), by state, and by creation time.
- `deliveries (state, channel, due_at)`: a delivery job tops itself up with ready rows of
  its own channel, oldest first, without reading every queued row of the others.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notifications", sa.Column("send_at", sa.DateTime(timezone=True)))
    op.add_column("notifications", sa.Column("cancelled_at", sa.DateTime(timezone=True)))
    op.create_index("ix_notifications_topic_id_id", "notifications", ["topic_id", "id"])
    op.create_index("ix_notifications_source_id", "notifications", ["source", "id"])
    op.create_index("ix_notifications_created_at", "notifications", ["created_at"])
    op.create_index("ix_notifications_state_due_at", "notifications", ["state", "due_at"])
    op.create_index("ix_notifications_state_id", "notifications", ["state", "id"])
    op.create_index(
        "ix_deliveries_state_channel_due_at", "deliveries", ["state", "channel", "due_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_state_channel_due_at", "deliveries")
    op.drop_index("ix_notifications_state_id", "notifications")
    op.drop_index("ix_notifications_state_due_at", "notifications")
    op.drop_index("ix_notifications_created_at", "notifications")
    op.drop_index("ix_notifications_source_id", "notifications")
    op.drop_index("ix_notifications_topic_id_id", "notifications")
    with op.batch_alter_table("notifications") as batch:
        batch.drop_column("cancelled_at")
        batch.drop_column("send_at")
