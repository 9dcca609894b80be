"""The console as a marketer's workspace: topic categories, saved segments, template
versions, the staff audit log and background imports.

Existing topics get the category their behaviour already had: a required topic was never
held by the marketing rules, so it is transactional; every other topic was treated as
marketing, and stays so (nothing waits differently after the upgrade). Each existing template
gets its current parts as its first kept version.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _at(name: str, *, nullable: bool = False) -> sa.Column[dt.datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column(
        "topics",
        sa.Column("category", sa.String(32), nullable=False, server_default="marketing"),
    )
    topics = sa.table("topics", sa.column("required", sa.Boolean), sa.column("category"))
    op.execute(topics.update().where(topics.c.required.is_(True)).values(category="transactional"))
    op.add_column("campaigns", sa.Column("segment_key", sa.String(100)))
    op.create_table(
        "segments",
        sa.Column("id", ID, primary_key=True),
        sa.Column("key", sa.String(100), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("conditions", JSON, nullable=False),
        sa.Column("created_by", sa.String(255), nullable=False),
        _at("created_at"),
        _at("updated_at"),
    )
    op.create_table(
        "template_versions",
        sa.Column("id", ID, primary_key=True),
        sa.Column(
            "template_id", ID, sa.ForeignKey("templates.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text()),
        sa.Column("variants", JSON, nullable=False),
        sa.Column("saved_by", sa.String(255), nullable=False),
        _at("saved_at"),
        sa.UniqueConstraint("template_id", "version"),
    )
    templates = sa.table(
        "templates",
        sa.column("id", ID),
        sa.column("version", sa.Integer),
        sa.column("description", sa.Text),
        sa.column("variants", JSON),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    versions = sa.table(
        "template_versions",
        sa.column("template_id", ID),
        sa.column("version", sa.Integer),
        sa.column("description", sa.Text),
        sa.column("variants", JSON),
        sa.column("saved_by", sa.String),
        sa.column("saved_at", sa.DateTime(timezone=True)),
    )
    op.execute(
        versions.insert().from_select(
            ["template_id", "version", "description", "variants", "saved_by", "saved_at"],
            sa.select(
                templates.c.id,
                templates.c.version,
                templates.c.description,
                templates.c.variants,
                sa.literal("before versions were kept"),
                templates.c.updated_at,
            ),
        )
    )
    op.create_table(
        "audit_entries",
        sa.Column("id", ID, primary_key=True),
        _at("at"),
        sa.Column("actor_kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("resource", sa.String(32), nullable=False),
        sa.Column("resource_key", sa.String(255), nullable=False),
        sa.Column("before", JSON),
        sa.Column("after", JSON),
    )
    op.create_index("ix_audit_entries_at", "audit_entries", ["at"])
    op.create_table(
        "import_jobs",
        sa.Column("id", ID, primary_key=True),
        sa.Column("created_by", sa.String(255), nullable=False),
        sa.Column("filename", sa.String(255)),
        sa.Column("format", sa.String(16), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("bytes_total", sa.Integer()),
        sa.Column("bytes_read", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("rows_read", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("subscribed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("options", JSON, nullable=False),
        sa.Column("errors", sa.Text()),
        sa.Column("error", sa.Text()),
        _at("started_at"),
        _at("finished_at", nullable=True),
    )


def downgrade() -> None:
    op.drop_table("import_jobs")
    op.drop_index("ix_audit_entries_at", table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_table("template_versions")
    op.drop_table("segments")
    op.drop_column("campaigns", "segment_key")
    op.drop_column("topics", "category")
