"""Outbound event webhooks: endpoints of other services, the outbox, and the delivery log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "event_endpoints",
        sa.Column("id", ID, primary_key=True),
        sa.Column("url", sa.String(2048), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(255)),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_table(
        "event_messages",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "endpoint_id",
            ID,
            sa.ForeignKey("event_endpoints.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("contact_id", ID, sa.ForeignKey("contacts.id", ondelete="CASCADE")),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("payload", JSON, nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("due_at", nullable=True),
        sa.Column("last_status", sa.Integer()),
        sa.Column("last_error", sa.Text()),
        _at("created_at"),
        _at("delivered_at", nullable=True),
    )
    op.create_index("ix_event_messages_state_due_at", "event_messages", ["state", "due_at"])
    op.create_index("ix_event_messages_endpoint_id_id", "event_messages", ["endpoint_id", "id"])
    op.create_index("ix_event_messages_contact_id", "event_messages", ["contact_id"])
    op.create_table(
        "event_attempts",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "message_id",
            ID,
            sa.ForeignKey("event_messages.id", ondelete="CASCADE"),
            nullable=False,
        ),
        _at("attempted_at"),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
    )
    op.create_index("ix_event_attempts_message_id", "event_attempts", ["message_id"])


def downgrade() -> None:
    op.drop_table("event_attempts")
    op.drop_table("event_messages")
    op.drop_table("event_endpoints")
