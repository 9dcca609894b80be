"""Alembic environment: the engine is handed in by `hub.db.migrate`, never read from an ini."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from hub.db import models  # noqa: F401  (registers the tables on Base.metadata)
from hub.db.base import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through `hub db upgrade`, which supplies the engine")

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()
