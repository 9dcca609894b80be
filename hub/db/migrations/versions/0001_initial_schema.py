"""Initial schema: contacts, preferences, topics, subscriptions, suppressions, timeline, keys, staff.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Types are spelled out here rather than imported from the models, so this file keeps meaning
the same thing after the models move on.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
ENUM = sa.String(32)  # enum values, checked by the application, no native type to migrate


def _id() -> sa.Column[int]:
    return sa.Column("id", ID, primary_key=True)


def _at(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _contact_fk(name: str = "contact_id", *, primary_key: bool = False) -> sa.Column[int]:
    return sa.Column(
        name,
        ID,
        sa.ForeignKey("contacts.id", ondelete="CASCADE"),
        nullable=False,
        primary_key=primary_key,
    )


APPEND_ONLY_SQLITE = """
CREATE TRIGGER contact_events_append_only BEFORE UPDATE ON contact_events
BEGIN SELECT RAISE(ABORT, 'contact_events is append-only'); END
"""
APPEND_ONLY_POSTGRES = [
    """
    CREATE FUNCTION contact_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'contact_events is append-only'; END $$
    """,
    """
    CREATE TRIGGER contact_events_append_only BEFORE UPDATE ON contact_events
    FOR EACH ROW EXECUTE FUNCTION contact_events_append_only()
    """,
]


def upgrade() -> None:
    op.create_table(
        "contacts",
        _id(),
        sa.Column("external_id", sa.String(255), nullable=False, unique=True),
        sa.Column("kind", ENUM, nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("email", sa.String(320), index=True),
        sa.Column("phone", sa.String(20), index=True),
        sa.Column("webhook_url", sa.String(2048)),
        sa.Column("locale", sa.String(35)),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("attributes", JSON, nullable=False),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_table(
        "contact_preferences",
        _contact_fk(primary_key=True),
        sa.Column("blocked_channels", JSON, nullable=False),
        sa.Column("quiet_start", sa.Time()),
        sa.Column("quiet_end", sa.Time()),
        sa.Column("unsubscribed_all", sa.Boolean(), nullable=False),
        _at("updated_at"),
    )
    op.create_table(
        "topics",
        _id(),
        sa.Column("key", sa.String(100), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("audience", ENUM, nullable=False),
        sa.Column("allowed_channels", JSON, nullable=False),
        sa.Column("default_channels", JSON, nullable=False),
        sa.Column("allowed_frequencies", JSON, nullable=False),
        sa.Column("public", sa.Boolean(), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("bypass_quiet_hours", sa.Boolean(), nullable=False),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_table(
        "subscriptions",
        _id(),
        _contact_fk(),
        sa.Column("topic_id", ID, sa.ForeignKey("topics.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("status", ENUM, nullable=False),
        sa.Column("channels", JSON, nullable=False),
        sa.Column("frequency", ENUM, nullable=False),
        sa.Column("consent_source", sa.String(64), nullable=False),
        sa.Column("consent_actor", sa.String(255), nullable=False),
        _at("consent_at"),
        _at("created_at"),
        _at("updated_at"),
        sa.UniqueConstraint("contact_id", "topic_id"),
    )
    op.create_index(
        "ix_subscriptions_topic_status", "subscriptions", ["topic_id", "status", "contact_id"]
    )
    op.create_table(
        "suppressions",
        _id(),
        sa.Column("channel", ENUM, nullable=False),
        sa.Column("address", sa.String(2048)),
        sa.Column("address_hash", sa.String(64), nullable=False),
        sa.Column("reason", ENUM, nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("note", sa.Text()),
        _at("created_at"),
        _at("expires_at", nullable=True),
        sa.UniqueConstraint("channel", "address_hash"),
    )
    op.create_table(
        "contact_events",
        _id(),
        _contact_fk(),
        _at("occurred_at"),
        sa.Column("type", ENUM, nullable=False),
        sa.Column("actor_kind", ENUM, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("source", sa.String(64), nullable=False),
        sa.Column("topic_key", sa.String(100)),
        sa.Column("channel", ENUM),
        sa.Column("changes", JSON),
        sa.Column("reason", sa.String(255)),
        sa.Column("ip", sa.String(45)),
        sa.Column("user_agent", sa.String(512)),
    )
    op.create_index("ix_contact_events_contact_id_id", "contact_events", ["contact_id", "id"])
    if op.get_context().dialect.name == "sqlite":
        op.execute(APPEND_ONLY_SQLITE)
    else:
        for statement in APPEND_ONLY_POSTGRES:
            op.execute(statement)
    op.create_table(
        "erasures",
        _id(),
        sa.Column("subject_hash", sa.String(64), nullable=False, index=True),
        _at("erased_at"),
        sa.Column("actor_kind", ENUM, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("suppressions_added", sa.Integer(), nullable=False),
    )
    op.create_table(
        "api_keys",
        _id(),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", JSON, nullable=False),
        _at("created_at"),
        _at("revoked_at", nullable=True),
    )
    op.create_table(
        "staff_users",
        _id(),
        sa.Column("email", sa.String(320), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("role", ENUM, nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        _at("created_at"),
    )


def downgrade() -> None:
    if op.get_context().dialect.name != "sqlite":
        op.execute("DROP TRIGGER contact_events_append_only ON contact_events")
        op.execute("DROP FUNCTION contact_events_append_only()")
    for table in (
        "staff_users",
        "api_keys",
        "erasures",
        "contact_events",
        "suppressions",
        "subscriptions",
        "topics",
        "contact_preferences",
        "contacts",
    ):
        op.drop_table(table)
