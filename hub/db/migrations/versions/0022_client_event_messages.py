"""Client events for the employees who look after them (issue 21): the outbox.

`client_event_messages` holds a client's timeline event (a reply, a refusal, a failure, a
preference change, a click) from the transaction that recorded it until the one that turns
it into notifications for the employees subscribed to its system topic. Erasing the client
removes what was not yet told (CASCADE).

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "client_event_messages",
        sa.Column("id", ID),
        sa.Column(
            "contact_id",
            ID,
            sa.ForeignKey(
                "contacts.id",
                ondelete="CASCADE",
                name="fk_client_event_messages_contact_id_contacts",
            ),
            nullable=False,
        ),
        sa.Column("topic_key", sa.String(100), nullable=False),
        sa.Column("event", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_client_event_messages"),
    )
    op.create_index("ix_client_event_messages_contact_id", "client_event_messages", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_client_event_messages_contact_id", table_name="client_event_messages")
    op.drop_table("client_event_messages")
