"""Contact imports run in the background (the console's): the job row its progress page reads,
the run that keeps it up to date, and the per-row errors as a CSV file to download.

The import itself is `hub.services.imports`, as the API and the CLI run it; this module only
starts it on a file already received and writes what it does to the job row: bytes and rows
read and the counts after each batch (at most a few times a second), then the outcome, and the
rows' errors as CSV (line, field, message), kept as they were found and neutralised for
spreadsheets (`hub.exports`) as they are downloaded.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import time
from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from hub.db.base import utcnow
from hub.db.models import ImportJob
from hub.domain import ImportState
from hub.exports import CsvWriter
from hub.services.actor import Actor
from hub.services.errors import HubError, NotFound
from hub.services.hashing import AddressHasher
from hub.services.imports import ImportFormat, Subscriber, SubscribeTo, Tally, import_contacts

log = logging.getLogger("hub.imports")

MAX_ERRORS = 50_000  # row errors kept to download; the counts go on past them
ERRORS_HEADER = ("line", "field", "message")
_EVERY = 0.25  # seconds between progress writes
HEARTBEAT = 15.0  # seconds between the runner's "still alive" writes
STALE = dt.timedelta(minutes=2)  # no word for this long: the process running it is gone
_INTERRUPTED = (
    "Hub stopped while this import ran. The rows before it stopped were imported; import the "
    "file again to finish (people already imported are updated, not added twice)."
)


class Interrupted(Exception):
    """The process is stopping: the import ends after the batch it is writing."""


def start(
    session: Session,
    *,
    created_by: str,
    filename: str | None,
    fmt: ImportFormat,
    size: int | None,
    subscribe: SubscribeTo | None,
) -> ImportJob:
    """A new job in state running (the caller commits, then starts `run`)."""
    job = ImportJob(
        created_by=created_by[:255],
        filename=(filename or "")[:255] or None,
        format=fmt.value,
        state=ImportState.RUNNING,
        bytes_total=size,
        options={"subscribe": subscribe.options() if subscribe else None},
        started_at=utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def get(session: Session, job_id: int) -> ImportJob:
    job = session.get(ImportJob, job_id)
    if job is None:
        raise NotFound(f"no import {job_id}")
    return job


def recent(session: Session, *, before_id: int | None, limit: int) -> list[ImportJob]:
    """Newest first."""
    query = select(ImportJob).order_by(ImportJob.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(ImportJob.id < before_id)
    return list(session.scalars(query))


def run(
    sessions: sessionmaker[Session],
    job_id: int,
    chunks: Iterable[bytes],
    *,
    fmt: ImportFormat,
    actor: Actor,
    allow_private_webhooks: bool,
    batch_size: int,
    subscribe: SubscribeTo | None,
    hasher: AddressHasher,
    cool_down: dt.timedelta,
) -> None:
    """Run the import, writing its progress and outcome to the job. Never raises for the
    import's own failures (they are the job's outcome); the caller's thread ends with it."""
    tally = Tally(max_errors=MAX_ERRORS)
    last = 0.0

    def progress(now: Tally) -> None:
        nonlocal last
        if time.monotonic() - last >= _EVERY:
            _write(sessions, job_id, _counts(now))
            last = time.monotonic()

    subscriber = None
    if subscribe is not None:
        subscriber = Subscriber(subscribe, actor=actor, hasher=hasher, cool_down=cool_down)
    try:
        import_contacts(
            sessions,
            chunks,
            fmt=fmt,
            actor=actor,
            allow_private_webhooks=allow_private_webhooks,
            batch_size=batch_size,
            progress=progress,
            subscriber=subscriber,
            tally=tally,
        )
    except HubError as exc:  # a header it cannot read, text that breaks off, a conflict
        fail(sessions, job_id, exc.message, tally)
    except Interrupted:
        fail(sessions, job_id, _INTERRUPTED, tally)
    except Exception as exc:
        # The thread ends here: what went wrong is logged and shown on the job, not lost.
        log.exception("import %s failed", job_id)
        fail(sessions, job_id, f"the import stopped on an unexpected error: {exc}", tally)
    else:
        _write(
            sessions,
            job_id,
            _counts(tally)
            | {"state": ImportState.DONE, "finished_at": utcnow(), "errors": errors_csv(tally)},
        )


def fail(sessions: sessionmaker[Session], job_id: int, why: str, tally: Tally | None) -> None:
    """End the job as failed, keeping what it did until then."""
    values: dict[str, Any] = {"state": ImportState.FAILED, "finished_at": utcnow(), "error": why}
    if tally is not None:
        values |= _counts(tally) | {"errors": errors_csv(tally)}
    _write(sessions, job_id, values)


def errors_csv(tally: Tally) -> str | None:
    """The rows' errors as CSV text, or None when there were none."""
    if not tally.errors:
        return None
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(ERRORS_HEADER)
    for error in tally.errors:
        writer.writerow((error.line, error.field, error.reason))
    if tally.truncated:
        writer.writerow(("", "", f"only the first {MAX_ERRORS:,} problems are listed"))
    return out.getvalue()


def error_rows(text: str) -> list[tuple[str, str, str]]:
    """A job's stored errors CSV read back as (line, field, message), for showing."""
    rows = csv.reader(io.StringIO(text))
    next(rows, None)  # the header
    return [(row[0], row[1], row[2]) for row in rows if len(row) == len(ERRORS_HEADER)]


def error_download(text: str, rows_per_chunk: int = 1000) -> Iterator[str]:
    """A job's stored errors as the CSV file people download, in pieces: every cell that a
    spreadsheet could read as a formula (a column name or a value from the file) made text."""
    out = io.StringIO()
    writer = CsvWriter(out)
    writer.writerow(ERRORS_HEADER)
    reader = csv.reader(io.StringIO(text))
    next(reader, None)  # the stored header
    for count, row in enumerate(reader, start=1):
        writer.writerow(row)
        if count % rows_per_chunk == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def _counts(tally: Tally) -> dict[str, Any]:
    return {
        "bytes_read": tally.bytes_read,
        "rows_read": tally.rows,
        "created": tally.created,
        "updated": tally.updated,
        "failed": tally.failed,
        "subscribed": tally.subscribed,
    }


def _write(sessions: sessionmaker[Session], job_id: int, values: dict[str, Any]) -> None:
    with sessions() as session:
        row = update(ImportJob).where(ImportJob.id == job_id)
        session.execute(row.values(values | {"updated_at": utcnow()}))
        session.commit()


def beat(sessions: sessionmaker[Session], job_ids: Iterable[int]) -> None:
    """Say that these jobs' process is alive (the runner does, for running and waiting jobs)."""
    ids = list(job_ids)
    if not ids:
        return
    with sessions() as session:
        session.execute(
            update(ImportJob)
            .where(ImportJob.id.in_(ids), ImportJob.state == ImportState.RUNNING)
            .values(updated_at=utcnow())
        )
        session.commit()


def stopped(job: ImportJob, now: dt.datetime) -> bool:
    """Still "running" though its process has said nothing for `STALE`: it was killed."""
    heard = job.updated_at or job.started_at
    return job.state is ImportState.RUNNING and now - heard > STALE


def mark_stopped(sessions: sessionmaker[Session], job_ids: Iterable[int]) -> None:
    """End jobs whose process is gone as failed, keeping the counts of their last batch."""
    now = utcnow()
    with sessions() as session:
        for job in session.scalars(select(ImportJob).where(ImportJob.id.in_(list(job_ids)))):
            if stopped(job, now):  # read again under the write: it may have spoken since
                heard = job.updated_at or job.started_at
                log.warning("import %s: no word from its process since %s; failed", job.id, heard)
                job.state, job.finished_at, job.error = ImportState.FAILED, now, _INTERRUPTED
        session.commit()
