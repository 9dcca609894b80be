"""Staff templates rendered in child processes that are killed when they overrun.

The sandbox bounds every value a template builds, and its clock stops a render between steps;
inside one process that still leaves the rest of it sharing the interpreter with the render:
a template that legally spends its whole 2 s budget slows every other request the process
serves. The API's renders (the check when a template is saved or posted inline, and previews)
therefore run here: in a small pool of child processes, each render with a hard deadline. A
child that does not answer in time is killed and replaced; one that dies (memory limit, a crash)
is replaced too. The serving process only waits on a pipe, without the interpreter lock.

Deliveries render in the worker's own process (this would add a tenth to each one's cost);
there the sandbox's limits and the repeated-overrun breaker in `render.py` keep a worker moving.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import resource
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from hub.domain import Channel
from hub.templates import variables
from hub.templates.model import Links, Rendered, TemplateDoc
from hub.templates.render import Renderer, TemplateError

log = logging.getLogger(__name__)

MEMORY_LIMIT = 1 << 30  # bytes of address space a child may map: a bomb kills only the child
GRACE_SECONDS = 1.0  # past the render budget, before the child is killed
# A new child's start (the fork server's own on first use, its imports, the renderer) is not a
# render: on a loaded machine it took over 3 s, and the first template posted after start-up
# was refused as too slow. It has this long, apart from any render's budget.
STARTUP_SECONDS = 60.0
EVERY = "*"  # as `locale`: every variant, for the check before a template is kept


@dataclass(frozen=True, slots=True)
class Attempt:
    """One channel of one variant, rendered or failed."""

    channel: Channel
    locale: str | None
    rendered: Rendered | None = None
    error: TemplateError | None = None


@dataclass(frozen=True, slots=True)
class _Ready:
    """Sent once by a child that can render."""


@dataclass(frozen=True, slots=True)
class _Starting:
    """Sent before each render, so an overrun can name the part."""

    field: str


@dataclass(frozen=True, slots=True)
class _Job:
    doc: TemplateDoc
    locale: str | None  # or EVERY
    context: dict[str, Any]
    links: Links


@dataclass(frozen=True, slots=True)
class _Variables:
    """Asks which variables `doc` reads; answered with one `_Found`."""

    doc: TemplateDoc


@dataclass(frozen=True, slots=True)
class _Found:
    paths: list[str]


class RenderProcesses:
    """A pool of `processes` children rendering with `Renderer(**options)`; thread-safe.

    Children start on first use (from a fork server, so each start costs milliseconds, not an
    interpreter's start-up); `close` stops them.
    """

    def __init__(self, *, processes: int = 2, **options: Any) -> None:
        self._options = options
        self._seconds = float(options.get("max_seconds", 2.0))
        self._context = multiprocessing.get_context("forkserver")
        # The fork server imports this module and the main one once; each child is then a fork
        # of it, which does not import the main module again.
        self._context.set_forkserver_preload(["__main__", __name__])
        # Idle children, None for a slot whose child is started when first needed.
        self._idle: queue.LifoQueue[_Child | None] = queue.LifoQueue()
        for _ in range(processes):
            self._idle.put(None)
        self._lock = threading.Lock()
        self._children: list[_Child] = []
        self._closed = False
        # Fingerprints of templates their callers found fine, so a service posting the same
        # inline content again and again pays for one check, not one per request.
        self.passed = Remembered(4096)

    def attempts(
        self, doc: TemplateDoc, *, locale: str | None, context: dict[str, Any], links: Links
    ) -> list[Attempt]:
        """Render each channel of `doc` for `locale` (EVERY: of each variant) in a child.

        Raises:
            TemplateError: a part does not compile, or (refused) a render overran its
                deadline or killed its process; the child is then replaced.
        """
        answers = self._ask(_Job(doc, locale, context, links))
        return [answer for answer in answers if isinstance(answer, Attempt)]

    def variables(self, doc: TemplateDoc) -> list[str]:
        """The variable paths `doc`'s parts read (see `variables.used`), found in a child:
        parsing a long part holds an interpreter for a tenth of a second.

        Raises:
            TemplateError: (refused) the child overran its deadline or died.
        """
        answers = self._ask(_Variables(doc))
        return next((a.paths for a in answers if isinstance(a, _Found)), [])

    def _ask(self, job: _Job | _Variables) -> list[Any]:
        child = self._idle.get()
        try:
            if child is None or not child.alive():
                child = self._start()
            return list(child.run(job, self._seconds))
        except TemplateError:
            raise  # the part's own error; the child is ready for the next job
        except _Overrun as exc:
            child.kill()  # type: ignore[union-attr]
            child = None
            raise TemplateError(exc.field, exc.message, refused=True) from None
        except BaseException:
            if child is not None:  # half a job may be left in the pipe
                child.kill()
                child = None
            raise
        finally:
            self._idle.put(child)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            children, self._children = self._children, []
        for child in children:
            child.stop()

    def _start(self) -> _Child:
        with self._lock:
            if self._closed:
                raise RuntimeError("the render processes are closed")
            receiving, sending = self._context.Pipe(duplex=True)
            process = self._context.Process(
                target=_serve, args=(sending, self._options), name="hub-render", daemon=True
            )
            process.start()
            sending.close()
            child = _Child(process, receiving)
            if not child.ready():
                child.kill()
                raise RuntimeError(f"a render process did not start in {STARTUP_SECONDS:g} s")
            self._children = [c for c in self._children if c.alive()] + [child]
            return child


class Remembered:
    """A thread-safe set that forgets its oldest members past `size`."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._members: OrderedDict[str, None] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, member: object) -> bool:
        with self._lock:
            return member in self._members

    def add(self, member: str) -> None:
        with self._lock:
            self._members[member] = None
            while len(self._members) > self._size:
                self._members.popitem(last=False)


class _Overrun(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class _Child:
    def __init__(self, process: BaseProcess, connection: Connection) -> None:
        self.process = process
        self.connection = connection

    def alive(self) -> bool:
        return self.process.is_alive() and not self.connection.closed

    def ready(self) -> bool:
        """Whether the new child said it can render within STARTUP_SECONDS."""
        try:
            return self.connection.poll(STARTUP_SECONDS) and isinstance(
                self.connection.recv(), _Ready
            )
        except (EOFError, OSError):
            return False

    def run(self, job: _Job | _Variables, seconds: float) -> Iterator[Attempt | _Found]:
        """Each render's answer must come within the budget and the grace."""
        self.connection.send(job)
        field = "template"
        while True:
            if not self.connection.poll(seconds + GRACE_SECONDS):
                log.warning(
                    "a render of template %r (%s) ran past %.1f s; its process was killed",
                    job.doc.key,
                    field,
                    seconds + GRACE_SECONDS,
                )
                raise _Overrun(field, f"rendering took longer than {seconds:g} s")
            try:
                answer = self.connection.recv()
            except (EOFError, OSError):
                code = self.process.exitcode
                log.warning("a render process died (exit code %s) on %r", code, job.doc.key)
                raise _Overrun(field, "rendering used more memory than allowed") from None
            if isinstance(answer, _Starting):
                field = answer.field
            elif isinstance(answer, Attempt | _Found):
                yield answer
            elif isinstance(answer, TemplateError):
                raise answer
            else:
                return

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.connection.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):  # already gone: nothing to ask
            self.connection.send(None)
        self.process.join(2)
        if self.process.is_alive():
            self.kill()
        self.connection.close()


def _serve(connection: Connection, options: dict[str, Any]) -> None:
    """The child: render each job, answering one Attempt per render, then None."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    renderer = Renderer(**options)
    connection.send(_Ready())
    while True:
        try:
            job = connection.recv()
        except EOFError:
            return
        if job is None:
            return
        if isinstance(job, _Variables):
            connection.send(_Found(variables.used(job.doc)))
            connection.send(None)
            continue
        try:
            compiled = renderer.compile(job.doc)
        except TemplateError as exc:
            connection.send(exc)
            continue
        every = job.locale == EVERY
        for channel, variant, field in compiled.plan(job.locale, every=every):
            connection.send(_Starting(field))
            locale = (variant or None) if every else job.locale
            try:
                rendered = compiled.render(
                    channel, locale=locale, context=job.context, links=job.links
                )
                connection.send(Attempt(channel, locale, rendered=rendered))
            except TemplateError as exc:
                connection.send(Attempt(channel, locale, error=exc))
        connection.send(None)
