"""A notification may be rendered as another contact than the one it goes to.

A campaign's test send renders as the first person of the audience and goes to the tester.
It used to copy that person's name, language and attributes onto the tester's stand-in
contact, where the copy stayed (and on its timeline) even after the person was erased. Now the
notification names the person by id and the composer reads them at send time: nothing is
copied, and an erased person is simply gone (the test then renders as the stand-in).

No foreign key: as with `recipients`, a contact's erasure must not touch the notification.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.add_column("notifications", sa.Column("render_as_id", ID))


def downgrade() -> None:
    op.drop_column("notifications", "render_as_id")
