"""The console's background imports, on SQLite and PostgreSQL: a job row follows its import to
done (counts, the rows' problems kept as CSV) or to failed (why, and what was done until then);
a runner that stops marks what it never started, and ends a running import after its batch."""

from __future__ import annotations

import csv
import datetime as dt
import io
import tempfile
import threading
from collections.abc import Iterator

from sqlalchemy import func, select

from hub.db.models import Contact, ImportJob
from hub.domain import ActorKind, ImportState
from hub.runtime import Runtime
from hub.services import import_jobs
from hub.services.actor import Actor
from hub.services.imports import ImportFormat

ACTOR = Actor(ActorKind.STAFF, "mia@acme.example", "console.import")


def new_job(runtime: Runtime, size: int = 0) -> int:
    with runtime.sessions() as session:
        job = import_jobs.start(
            session,
            created_by=ACTOR.name,
            filename="people.csv",
            fmt=ImportFormat.CSV,
            size=size,
            subscribe=None,
        )
        session.commit()
        return job.id


def run(runtime: Runtime, job_id: int, chunks: Iterator[bytes] | list[bytes]) -> ImportJob:
    import_jobs.run(
        runtime.sessions,
        job_id,
        chunks,
        fmt=ImportFormat.CSV,
        actor=ACTOR,
        allow_private_webhooks=False,
        batch_size=10,
        subscribe=None,
        hasher=runtime.hasher,
        cool_down=dt.timedelta(days=30),
    )
    with runtime.reads() as session:
        job = session.get(ImportJob, job_id)
        assert job is not None
        return job


def test_a_job_follows_its_import_to_the_end_keeping_the_problems(runtime: Runtime) -> None:
    rows = [f"p-{i},p{i}@example.com" for i in range(25)]
    rows[4] = "p-4,=1+1"  # not an address, and a formula to a spreadsheet
    data = ("external_id,email\n" + "\n".join(rows) + "\n").encode()
    job = run(runtime, new_job(runtime, len(data)), [data])
    assert job.state is ImportState.DONE
    assert (job.rows_read, job.created, job.failed, job.bytes_read) == (25, 24, 1, len(data))
    assert job.finished_at is not None
    assert job.error is None
    assert import_jobs.error_rows(job.errors or "") == [
        ("6", "email", "not a valid e-mail address: An email address must have an @-sign.")
    ]
    download = "".join(import_jobs.error_download(job.errors or "", rows_per_chunk=1))
    cells = list(csv.reader(io.StringIO(download)))
    assert cells[0] == ["line", "field", "message"]
    assert cells[1][:2] == ["6", "email"]


def test_a_file_it_cannot_read_fails_the_job_saying_why(runtime: Runtime) -> None:
    job = run(runtime, new_job(runtime), [b"external_id,shoe size\np-1,44\n"])
    assert job.state is ImportState.FAILED
    assert job.error is not None
    assert "unknown column 'shoe size'" in job.error
    good = b"external_id\n" + b"".join(f"q-{i}\n".encode() for i in range(15))
    broken = run(runtime, new_job(runtime), [good, b"q-99,\xff\xfe\n"])
    assert broken.state is ImportState.FAILED
    assert broken.error is not None
    assert "is not UTF-8" in broken.error
    assert broken.rows_read == 15  # what was imported before the bad bytes is kept and counted
    with runtime.reads() as session:
        assert session.scalar(select(func.count()).select_from(Contact)) == 15


def test_a_stopping_runner_ends_running_imports_and_marks_waiting_ones(runtime: Runtime) -> None:
    from hub.console.import_runner import RUNNING_AT_ONCE, ImportRunner

    runner = ImportRunner(runtime)
    reading = threading.Semaphore(0)
    release = threading.Event()

    class SlowFile(io.BytesIO):
        """A file read 100 bytes at a time whose second read waits: its import is running
        when the runner stops."""

        def __init__(self, data: bytes) -> None:
            super().__init__(data)
            self.reads = 0

        def read(self, size: int | None = -1, /) -> bytes:
            self.reads += 1
            if self.reads == 2:
                reading.release()
                release.wait(10)
            return super().read(100)

    body = b"external_id\n" + b"".join(f"s-{i}\n".encode() for i in range(100))
    jobs = [new_job(runtime, len(body)) for _ in range(RUNNING_AT_ONCE + 1)]
    for job_id in jobs[:RUNNING_AT_ONCE]:
        runner.submit(job_id, SlowFile(body), fmt=ImportFormat.CSV, actor=ACTOR, subscribe=None)
    waiting = tempfile.TemporaryFile()  # noqa: SIM115 - the runner closes it
    waiting.write(body)
    runner.submit(jobs[-1], waiting, fmt=ImportFormat.CSV, actor=ACTOR, subscribe=None)
    for _ in jobs[:RUNNING_AT_ONCE]:
        assert reading.acquire(timeout=10)  # every running import is in its file
    stopping = threading.Thread(target=runner.close)
    stopping.start()
    release.set()
    stopping.join(30)
    assert not stopping.is_alive()
    assert waiting.closed  # the temporary file goes with the job, run or not
    with runtime.reads() as session:
        states = {j.id: j for j in session.scalars(select(ImportJob))}
    for job_id in jobs[:RUNNING_AT_ONCE]:
        interrupted = states[job_id]
        assert interrupted.state is ImportState.FAILED
        assert interrupted.error is not None
        assert interrupted.error.startswith("Hub stopped while this import ran")
    never = states[jobs[-1]]
    assert never.state is ImportState.FAILED
    assert never.error is not None
    assert "before this import started" in never.error
    assert never.rows_read == 0


def test_a_job_whose_process_was_killed_stops_being_running(runtime: Runtime) -> None:
    """A killed process writes nothing more: after `STALE` without a heartbeat its job is
    failed, keeping its counts; a job whose process still beats is left running."""
    dead, alive = new_job(runtime), new_job(runtime)
    long_ago = import_jobs.utcnow() - import_jobs.STALE - dt.timedelta(seconds=1)
    with runtime.sessions() as session:
        for job in session.scalars(select(ImportJob)):
            job.started_at = job.updated_at = long_ago
            job.rows_read = 7
        session.commit()
    import_jobs.beat(runtime.sessions, [alive])
    with runtime.reads() as session:
        now = import_jobs.utcnow()
        found = {
            job.id: import_jobs.stopped(job, now) for job in session.scalars(select(ImportJob))
        }
    assert found == {dead: True, alive: False}
    import_jobs.mark_stopped(runtime.sessions, [dead, alive])
    with runtime.reads() as session:
        jobs = {job.id: job for job in session.scalars(select(ImportJob))}
    assert jobs[dead].state is ImportState.FAILED
    assert jobs[dead].error is not None
    assert "Hub stopped while this import ran" in jobs[dead].error
    assert jobs[dead].rows_read == 7
    assert jobs[alive].state is ImportState.RUNNING
