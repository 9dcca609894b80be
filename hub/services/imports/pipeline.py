"""Streamed contact import (CSV or NDJSON): good rows kept, each bad row reported with its line.

The file is read as it arrives and written in batches, each committed on its own, so memory
stays flat however long the file and an error part-way keeps the batches before it. Checking a
row costs more than writing it (e-mail and phone validation), so a big import checks batches in
worker processes while this process reads and writes; small ones stay in this process.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from contextlib import contextmanager
from functools import partial
from itertools import islice

from sqlalchemy.orm import Session, sessionmaker

from hub.schemas.imports import MAX_REPORTED_ERRORS, ImportReport, RowError
from hub.services.actor import Actor
from hub.services.errors import InvalidField
from hub.services.imports.rows import (
    Checked,
    CsvRows,
    ImportFormat,
    NdjsonRows,
    RawRow,
    check_batch,
    format_for,
)
from hub.services.imports.stream import Utf8Chunks, open_text
from hub.services.imports.subscribe import Subscriber
from hub.services.imports.writer import BatchWriter, Counts

__all__ = ["ImportFormat", "ImportReport", "Tally", "format_for", "import_contacts"]

# Worker processes cost a fraction of a second to start: worth it only past this many rows.
PARALLEL_AFTER_ROWS = 5_000
MAX_WORKERS = 3
WORKER_NICENESS = 10

CheckFn = Callable[[list[RawRow]], Checked]


def import_contacts(
    sessions: sessionmaker[Session],
    chunks: Iterable[bytes],
    *,
    fmt: ImportFormat,
    actor: Actor,
    allow_private_webhooks: bool,
    batch_size: int = 1000,
    progress: Callable[[Tally], None] | None = None,
    workers: int | None = None,
    subscriber: Subscriber | None = None,
    tally: Tally | None = None,
) -> ImportReport:
    """Import contacts from UTF-8 `chunks`, merging given fields into existing contacts.

    `workers`: processes that check rows; None: one per core (up to MAX_WORKERS), started
    once the file proves big; 0: all in this process. As with any use of
    multiprocessing, a script that calls this must guard its entry point with
    `if __name__ == "__main__":`, as worker processes import it.
    `subscriber`: subscribe each written person (the subscribe option). `progress` is called
    with the running `tally` after each batch; a caller that passes its own `tally` can still
    read what was done when this raises.

    Raises:
        InvalidField: the CSV header is not understood ("header"), or the body stops being
            readable text ("body"; the rows before that line were imported).
        Conflict: a batch collided twice with concurrent writers (earlier batches are kept).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    raw = Utf8Chunks(chunks)
    text = open_text(raw, newline="" if fmt is ImportFormat.CSV else "\n")
    source = CsvRows(text) if fmt is ImportFormat.CSV else NdjsonRows(text)
    check = partial(
        check_batch, columns=source.columns, allow_private_webhooks=allow_private_webhooks
    )
    tally = tally if tally is not None else Tally()
    writer = BatchWriter(sessions, actor, subscriber)
    parallel_after = _parallel_after(workers, batch_size)

    def write(checked: Checked) -> None:
        tally.add(checked, writer.write(checked.good))
        tally.bytes_read = raw.consumed
        if progress is not None:
            progress(tally)

    checking = _Checking(check, workers=_worker_count(workers), parallel_after=parallel_after)
    with _old_objects_frozen(), checking:
        for batch in _batched(iter(source), batch_size):
            for checked in checking.submit(batch):
                write(checked)
        for checked in checking.drain():
            write(checked)
    if source.failure is not None:
        raise InvalidField(
            "body", f"{source.failure}; the rows before it were imported ({tally.rows:,} read)"
        )
    return tally.report()


@contextmanager
def _old_objects_frozen() -> Iterator[None]:
    """Keep the collector off the objects that exist before the import, until it ends.

    Each batch keeps thousands of small containers alive for a moment; that promotes them and
    triggers full collections, which rescan every long-lived object of the process (the app,
    SQLAlchemy, pydantic): measured at a third of this process's CPU during an import.
    `gc.freeze` moves those objects aside and `gc.unfreeze` puts them back, so nothing leaks;
    an import running beside another may unfreeze early, which only costs it speed.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _batched(rows: Iterator[RawRow], size: int) -> Iterator[list[RawRow]]:
    while batch := list(islice(rows, size)):
        yield batch


def _worker_count(workers: int | None) -> int:
    if workers is not None:
        return workers
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return min(cores or 1, MAX_WORKERS) if (cores or 1) > 1 else 0


def _parallel_after(workers: int | None, batch_size: int) -> int:
    """Batches to check in this process before starting workers."""
    return 0 if workers else -(-PARALLEL_AFTER_ROWS // batch_size)


class _Checking:
    """Checks batches and hands them back in file order: here at first, then, once the file
    proves big, in worker processes while this one writes.

    The workers start in the background (the fork server takes ~0.3 s to import the checking
    code), and this process goes on checking until they are ready. A bounded number of
    batches is in flight, so a fast reader cannot outrun the checkers and fill memory.
    """

    def __init__(self, check: CheckFn, *, workers: int, parallel_after: int) -> None:
        self._check = check
        self._workers = workers
        self._parallel_after = parallel_after
        self._window = 2 * workers + 2
        self._pool: Executor | None = None
        self._starting: Future[Executor] | None = None
        self._pending: deque[Future[Checked]] = deque()
        self._submitted = 0

    def __enter__(self) -> _Checking:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._starting is not None and self._starting.exception() is None:
            self._starting.result().shutdown(wait=True, cancel_futures=True)

    def submit(self, batch: list[RawRow]) -> Iterator[Checked]:
        """Queue a batch; yield, in file order, the checked batches that are ready to write."""
        self._submitted += 1
        if self._starting is None and self._workers and self._submitted > self._parallel_after:
            self._starting = _start_pool(self._workers)
            if not self._parallel_after:  # workers asked for from the first batch
                self._starting.result()
        if self._pool is None and self._starting is not None and self._starting.done():
            self._pool = self._starting.result()
        if self._pool is None:
            yield self._check(batch)
            return
        self._pending.append(self._pool.submit(self._check, batch))
        while self._pending and (self._pending[0].done() or len(self._pending) > self._window):
            yield self._pending.popleft().result()

    def drain(self) -> Iterator[Checked]:
        while self._pending:
            yield self._pending.popleft().result()


def _start_pool(workers: int) -> Future[Executor]:
    """A pool, started in a thread; its future is done once a first worker process runs."""
    started: Future[Executor] = Future()

    def start() -> None:
        try:
            pool = _pool(workers)
            pool.submit(int).result()  # forks a worker: the fork server is up
        except Exception as exc:  # handed to the import's thread by the future
            started.set_exception(exc)
        else:
            started.set_result(pool)

    threading.Thread(target=start, name="import-workers-start", daemon=True).start()
    return started


def _pool(workers: int) -> ProcessPoolExecutor:
    # A fork server, not fork: this process may be a web server with threads and open
    # connections that a forked child must not inherit. Its children fork from a clean
    # process that has already imported the checking code.
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    if "forkserver" in methods:
        context.set_forkserver_preload(["__main__", "hub.services.imports.rows"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_started)


def _worker_started() -> None:
    # Writing is the one part that cannot be spread, so the process that writes comes first;
    # workers take the CPU it leaves. That also keeps a web server answering during an import.
    os.nice(WORKER_NICENESS)
    # The worker's long-lived objects (pydantic, phone metadata) never become garbage; left in
    # the collected generations, every full collection would rescan them while checking.
    gc.freeze()


class Tally:
    """An import's running counts, and its first `max_errors` row errors in file order."""

    def __init__(self, max_errors: int = MAX_REPORTED_ERRORS) -> None:
        self.bytes_read = 0
        self.rows = self.created = self.updated = self.unchanged = self.failed = 0
        self.subscribed = 0
        self.errors: list[RowError] = []
        self.truncated = False
        self._max_errors = max_errors

    def add(self, checked: Checked, counts: Counts) -> None:
        self.rows += checked.rows
        # A row whose subscription was refused was written, yet failed at what it was for;
        # one whose owner or teams were refused (only the writer can tell) was not written.
        self.failed += checked.failed + len(counts.rejected)
        self.failed += len({line for line, _, _ in counts.refused})
        self.created += counts.created
        self.updated += counts.updated
        self.unchanged += counts.unchanged
        self.subscribed += counts.subscribed
        problems = checked.problems
        if counts.refused or counts.rejected:
            found = [*problems, *counts.rejected, *counts.refused]
            problems = sorted(found, key=lambda problem: problem[0])
        room = self._max_errors - len(self.errors)
        self.errors += [
            RowError(line=line, field=field, reason=reason)
            for line, field, reason in problems[:room]
        ]
        self.truncated = self.truncated or len(problems) > room

    def report(self) -> ImportReport:
        return ImportReport(
            rows=self.rows,
            created=self.created,
            updated=self.updated,
            unchanged=self.unchanged,
            failed=self.failed,
            subscribed=self.subscribed,
            errors=self.errors,
            errors_truncated=self.truncated,
        )
