"""Engines and sessions, built from settings by the composition roots (never at import)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from hub.settings import Settings


def _tune_sqlite(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers run beside the single writer; foreign keys are off by default in SQLite;
    # busy_timeout turns "database is locked" into a short wait while another writer commits.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_SECONDS * 1000}")
    cursor.close()
    # Let SQLAlchemy, not the sqlite3 module, open transactions (see _begin_immediate).
    dbapi_connection.isolation_level = None


BUSY_SECONDS = 30
_HELD = "hub.write_lock"


class _WriteQueue:
    """One writer at a time inside this process, served in turn.

    Every transaction takes SQLite's write lock at BEGIN IMMEDIATE (a transaction that read
    a row and then writes it must not race another that did the same: SQLite has no
    SELECT ... FOR UPDATE). Left to SQLite's busy handler, a dozen threads poll for that
    lock with growing sleeps and an unlucky one can starve past its timeout under steady
    load; queueing on a Python lock first makes threads of one process take turns.
    Processes still queue on busy_timeout between them.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()  # released by whichever thread ends the transaction

    def begin(self, connection: Connection) -> None:
        if connection.get_execution_options().get("hub_read_only"):
            connection.exec_driver_sql("BEGIN")
            return
        if not self._lock.acquire(timeout=BUSY_SECONDS):
            raise TimeoutError(f"waited {BUSY_SECONDS} s for the SQLite write lock")
        connection.info[_HELD] = True
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            self.end(connection)
            raise

    def end(self, connection: Any) -> None:
        if connection.info.pop(_HELD, False):
            self._lock.release()

    def returned(self, _dbapi_connection: Any, record: Any) -> None:
        # A connection handed back to the pool mid-transaction (an error path) lets go too.
        if record.info.pop(_HELD, False):
            self._lock.release()


def make_engine(settings: Settings) -> Engine:
    if settings.is_sqlite:
        path = settings.sqlite_path()
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            settings.database_url,
            connect_args={"check_same_thread": False, "timeout": BUSY_SECONDS},
            hide_parameters=True,
        )
        writers = _WriteQueue()
        event.listen(engine, "connect", _tune_sqlite)
        event.listen(engine, "begin", writers.begin)
        event.listen(engine, "commit", writers.end)
        event.listen(engine, "rollback", writers.end)
        event.listen(engine, "checkin", writers.returned)
        return engine
    # hide_parameters: database errors must not copy e-mails, phones or names into the logs.
    # The pool holds as many connections as requests run at once (the API's thread pool
    # runs up to 40): an overflow connection is closed when handed back, so a pool smaller
    # than the load opened and closed a PostgreSQL connection every few requests.
    return create_engine(
        settings.database_url,
        pool_size=20,
        max_overflow=20,
        pool_pre_ping=True,
        hide_parameters=True,
    )


def make_sessions(engine: Engine, *, read_only: bool = False) -> sessionmaker[Session]:
    """`read_only`: sessions for reading only. On SQLite they open a plain (deferred)
    transaction that reads a WAL snapshot beside the writer instead of queueing for the
    write lock; never write through one (it would take the lock late, unserialised)."""
    if read_only:
        engine = engine.execution_options(hub_read_only=True)
    return sessionmaker(engine, expire_on_commit=False)
