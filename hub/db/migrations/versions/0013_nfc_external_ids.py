"""External ids in Unicode NFC, as every look-up now spells them.

Ids stored before in another form (`cafe` + U+0301) could no longer be found by id. Each is
rewritten to NFC unless another contact already has that spelling: two contacts that differ
only in normalisation stay as they are, and are named in the log for staff to merge.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from __future__ import annotations

import logging
import unicodedata

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_BATCH = 5000
log = logging.getLogger("alembic.runtime.migration")


def upgrade() -> None:
    connection = op.get_bind()
    contacts = sa.table(
        "contacts", sa.column("id", sa.Integer), sa.column("external_id", sa.String)
    )
    after, changes = 0, []
    while rows := connection.execute(
        sa.select(contacts.c.id, contacts.c.external_id)
        .where(contacts.c.id > after)
        .order_by(contacts.c.id)
        .limit(_BATCH)
    ).all():
        after = rows[-1].id
        for row in rows:
            if not row.external_id.isascii():
                normal = unicodedata.normalize("NFC", row.external_id)
                if normal != row.external_id:
                    changes.append((row.id, row.external_id, normal))
    for contact_id, spelt, normal in changes:
        taken = connection.execute(
            sa.select(contacts.c.id).where(contacts.c.external_id == normal)
        ).first()
        if taken is not None:
            log.warning(
                "contacts %s and %s differ only in Unicode normalisation (%r); merge them",
                contact_id,
                taken.id,
                spelt,
            )
            continue
        connection.execute(
            contacts.update().where(contacts.c.id == contact_id).values(external_id=normal)
        )


def downgrade() -> None:
    """Nothing to undo: NFC ids were valid before too."""
