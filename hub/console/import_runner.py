"""The console's background imports: threads of the web process that received the file.

An uploaded file already sits in a temporary file on disk when the page hands it over, so any
process can run it; the embedded default (`hub serve`) has no other. Two imports run at once,
more wait their turn. When the app stops, running imports end after the batch they are writing
and are marked as interrupted (what they imported stays), and waiting ones as not started. A
thread says every few seconds that this process still holds its running and waiting jobs, so
one whose process was killed is shown as stopped, not as running for ever.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import IO

import anyio.to_thread
from fastapi import FastAPI, Request

from hub.runtime import Runtime
from hub.services import import_jobs
from hub.services.actor import Actor
from hub.services.imports import ImportFormat, SubscribeTo

log = logging.getLogger("hub.imports")

CHUNK = 1 << 20
RUNNING_AT_ONCE = 2
_NOT_STARTED = "Hub stopped before this import started; nothing was imported. Upload it again."


class ImportRunner:
    def __init__(self, runtime: Runtime) -> None:
        self._runtime = runtime
        self._pool = ThreadPoolExecutor(RUNNING_AT_ONCE, thread_name_prefix="console-import")
        self._stopping = threading.Event()
        self._waiting: dict[int, tuple[Future[None], IO[bytes]]] = {}
        self._running: set[int] = set()
        self._lock = threading.Lock()
        self._beating = threading.Thread(target=self._beat, name="console-import-beat", daemon=True)
        self._beating.start()

    def submit(
        self,
        job_id: int,
        file: IO[bytes],
        *,
        fmt: ImportFormat,
        actor: Actor,
        subscribe: SubscribeTo | None,
    ) -> None:
        """Run the job on `file` (read from its start, closed when done: a temporary file
        without a name is deleted then)."""

        def work() -> None:
            with self._lock:
                self._waiting.pop(job_id, None)
                self._running.add(job_id)
            settings = self._runtime.settings
            try:
                import_jobs.run(
                    self._runtime.sessions,
                    job_id,
                    self._chunks(file),
                    fmt=fmt,
                    actor=actor,
                    allow_private_webhooks=settings.webhook_allow_private,
                    batch_size=settings.import_batch_size,
                    subscribe=subscribe,
                    hasher=self._runtime.hasher,
                    cool_down=dt.timedelta(days=settings.cool_down_days),
                )
            finally:
                file.close()
                with self._lock:
                    self._running.discard(job_id)

        with self._lock:
            self._waiting[job_id] = (self._pool.submit(work), file)

    def _beat(self) -> None:
        """Every `HEARTBEAT` seconds, say that this process still holds its jobs: one whose
        process was killed stops being "running" on its page (`import_jobs.stopped`)."""
        while not self._stopping.wait(import_jobs.HEARTBEAT):
            with self._lock:
                held = self._running | set(self._waiting)
            try:
                import_jobs.beat(self._runtime.sessions, held)
            except Exception:  # a database hiccup: the next beat tries again
                log.warning("import heartbeat failed", exc_info=True)

    def _chunks(self, file: IO[bytes]) -> Iterator[bytes]:
        file.seek(0)
        while chunk := file.read(CHUNK):
            if self._stopping.is_set():
                raise import_jobs.Interrupted
            yield chunk

    def close(self) -> None:
        """Stop: running imports end after their current batch; waiting ones never start."""
        self._stopping.set()
        with self._lock:
            waiting = [(job_id, file) for job_id, (f, file) in self._waiting.items() if f.cancel()]
        for job_id, file in waiting:
            file.close()
            import_jobs.fail(self._runtime.sessions, job_id, _NOT_STARTED, None)
        self._pool.shutdown(wait=True)


def runner(app: FastAPI) -> ImportRunner:
    """The app's runner; made on first use where the app's lifespan does not run (tests)."""
    found: ImportRunner | None = getattr(app.state, "console_imports", None)
    if found is None:
        found = app.state.console_imports = ImportRunner(app.state.runtime)
    return found


def runner_of(request: Request) -> ImportRunner:
    return runner(request.app)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Part of the app's lifespan (through the router): imports end before the runtime closes."""
    yield
    found: ImportRunner | None = getattr(app.state, "console_imports", None)
    if found is not None:
        await anyio.to_thread.run_sync(found.close)
