"""A random link key per contact, carried by every self-service link.

Links named the contact's row id alone, and SQLite hands the highest id out again after a
delete: an erased person's old link opened the next person's page. A link now also carries
the contact's own random key, which no other contact ever has.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_BATCH = 1000


def upgrade() -> None:
    # NOT NULL with a default, filled, then indexed: on SQLite this is an ADD COLUMN, not a
    # rebuild of the table (which, with foreign keys on, would cascade into its children).
    op.add_column(
        "contacts", sa.Column("link_key", sa.String(24), nullable=False, server_default="")
    )
    connection = op.get_bind()
    contacts = sa.table("contacts", sa.column("id", sa.Integer), sa.column("link_key", sa.String))
    pending = sa.select(contacts.c.id).where(contacts.c.link_key == "").limit(_BATCH)
    while ids := connection.execute(pending).scalars().all():
        connection.execute(
            contacts.update().where(contacts.c.id == sa.bindparam("contact_id")),
            [{"contact_id": i, "link_key": secrets.token_urlsafe(12)} for i in ids],
        )
    op.create_index("ix_contacts_link_key", "contacts", ["link_key"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_contacts_link_key", table_name="contacts")
    op.drop_column("contacts", "link_key")  # SQLite 3.35+ drops it in place
