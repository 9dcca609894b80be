"""The Alembic scripts build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

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


def test_existing_ids_and_link_keys_are_brought_up_to_date(runtime: Runtime) -> None:
    """0011 gives every existing contact its own link key; 0013 rewrites ids to NFC, except
    one whose NFC spelling another contact already has (the log names both)."""
    migrate.downgrade(runtime.engine, "0010")
    ids = ["cafe\u0301", "plain", "re\u0301sume\u0301", "r\u00e9sum\u00e9"]
    with runtime.engine.begin() as connection:
        for external_id in ids:
            connection.execute(
                text(
                    "INSERT INTO contacts (external_id, kind, timezone, attributes, created_at,"
                    " updated_at) VALUES (:e, 'client', 'UTC', '{}', :at, :at)"
                ),
                {"e": external_id, "at": "2026-01-01T00:00:00+00:00"},
            )
    migrate.upgrade(runtime.engine)
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT external_id, link_key FROM contacts ORDER BY id")
        ).all()
    assert [r.external_id for r in rows] == [
        "caf\u00e9",  # rewritten
        "plain",
        "re\u0301sume\u0301",  # its NFC spelling was taken: left for staff
        "r\u00e9sum\u00e9",
    ]
    keys = [r.link_key for r in rows]
    assert all(len(k) == 16 for k in keys)
    assert len(set(keys)) == len(keys)


def test_early_callbacks_parked_before_0014_are_read_in_hubs_words(runtime: Runtime) -> None:
    """0014 keeps parked callbacks as the provider's reader puts them; rows parked before it
    held Twilio's words only, and are read once with Twilio's meanings."""
    migrate.downgrade(runtime.engine, "0013")
    parked = [
        ("SM1", "delivered", None, None),
        ("SM2", "undelivered", "21610", None),
        ("CA3", "completed", None, "machine_start"),
        ("CA4", "completed", None, "human"),
        ("SM5", "mystery", None, None),
    ]
    with runtime.engine.begin() as connection:
        for sid, status, code, answered in parked:
            connection.execute(
                text(
                    "INSERT INTO early_callbacks (provider_id, status, error_code, answered_by,"
                    " received_at) VALUES (:sid, :status, :code, :answered, :at)"
                ),
                {
                    "sid": sid,
                    "status": status,
                    "code": code,
                    "answered": answered,
                    "at": "2026-12-07T00:00:00+00:00",
                },
            )
    migrate.upgrade(runtime.engine)
    with runtime.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT provider_id, provider, state, reason, error, suppress"
                " FROM early_callbacks ORDER BY id"
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        ("SM1", "twilio", "delivered", None, None, None),
        (
            "SM2",
            "twilio",
            "failed",
            "twilio:undelivered",
            "Twilio reported undelivered",
            "carrier_opt_out",
        ),
        ("CA3", "twilio", "delivered", "answered_by:machine_start", None, None),
        ("CA4", "twilio", "delivered", None, None, None),
        ("SM5", None, None, None, None, None),  # never parked by 0013; dropped unread
    ]
