"""The Alembic scripts build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from hub.db import migrate
from hub.db.base import Base
from hub.runtime import Runtime


def test_migrations_match_the_models(runtime: Runtime) -> None:
    with runtime.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        assert compare_metadata(context, Base.metadata) == []
    assert not migrate.pending(runtime.engine)


def test_downgrade_and_upgrade_again(runtime: Runtime) -> None:
    migrate.downgrade(runtime.engine, "base")
    assert set(inspect(runtime.engine).get_table_names()) <= {"alembic_version"}
    migrate.upgrade(runtime.engine)
    assert {t.name for t in Base.metadata.sorted_tables} <= set(
        inspect(runtime.engine).get_table_names()
    )
