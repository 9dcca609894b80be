"""Dispatch: templates, notifications, idempotency keys, deliveries, dead letters, captures.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ENUM = sa.String(32)


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "templates",
        _id(),
        sa.Column("key", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.Text()),
        sa.Column("variants", JSON, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_table(
        "notifications",
        _id(),
        sa.Column("topic_id", ID, sa.ForeignKey("topics.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("template_key", sa.String(100)),
        sa.Column("variants", JSON, nullable=False),
        sa.Column("data", JSON, nullable=False),
        sa.Column("recipients", JSON),
        sa.Column("channels", JSON),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("cursor", ID, nullable=False),
        _at("due_at"),
        _at("created_at"),
        _at("fanned_out_at", nullable=True),
    )
    op.create_table(
        "idempotency_keys",
        _id(),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("response", JSON),
        _at("created_at"),
        sa.UniqueConstraint("owner", "key"),
    )
    op.create_index("ix_idempotency_keys_created_at", "idempotency_keys", ["created_at"])
    op.create_table(
        "deliveries",
        _id(),
        sa.Column(
            "notification_id",
            ID,
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "contact_id", ID, sa.ForeignKey("contacts.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("channel", ENUM, nullable=False),
        sa.Column("state", ENUM, nullable=False),
        sa.Column("reason", sa.String(64)),
        sa.Column("address", sa.String(2048)),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _at("due_at", nullable=True),
        _at("not_before", nullable=True),
        sa.Column("ambiguous", sa.Boolean(), nullable=False),
        sa.Column("provider", sa.String(64)),
        sa.Column("provider_id", sa.String(255)),
        sa.Column("error_code", sa.String(32)),
        sa.Column("error", sa.Text()),
        _at("created_at"),
        _at("updated_at"),
        _at("sent_at", nullable=True),
        sa.UniqueConstraint("notification_id", "contact_id", "channel"),
    )
    op.create_index("ix_deliveries_state_due_at", "deliveries", ["state", "due_at"])
    op.create_index("ix_deliveries_notification_id_id", "deliveries", ["notification_id", "id"])
    op.create_index("ix_deliveries_contact_id", "deliveries", ["contact_id"])
    op.create_table(
        "dead_letters",
        _id(),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("args", JSON, nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        _at("created_at"),
        _at("replayed_at", nullable=True),
    )
    op.create_table(
        "captures",
        _id(),
        sa.Column("delivery_id", ID),
        sa.Column("channel", ENUM, nullable=False),
        sa.Column("to", sa.String(2048), nullable=False),
        sa.Column("subject", sa.Text()),
        sa.Column("text", sa.Text()),
        sa.Column("html", sa.Text()),
        sa.Column("body", sa.LargeBinary()),
        _at("created_at"),
    )
    op.create_index("ix_captures_delivery_id", "captures", ["delivery_id"])


def downgrade() -> None:
    for table in (
        "captures",
        "dead_letters",
        "deliveries",
        "idempotency_keys",
        "notifications",
        "templates",
    ):
        op.drop_table(table)
