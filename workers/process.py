"""`hub worker`: N worker processes against a real broker, stopped cleanly by SIGTERM/SIGINT.

Each process builds its own runtime (database pool, broker connection, adapters); nothing
is shared across a fork. The parent only starts, watches and stops them.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import tempfile
import threading
from types import FrameType

from hub.runtime import Runtime
from hub.settings import Settings

log = logging.getLogger("hub.workers")


def _serve(settings: Settings) -> None:
    from hub import logs
    from hub.workers.service import Workers

    logs.setup(settings)  # a spawned child starts with no logging of its own
    stop = threading.Event()

    def _on_signal(signum: int, _: FrameType | None) -> None:
        log.info(
            "worker %s: signal %d, finishing in-flight work",
            multiprocessing.current_process().name,
            signum,
        )
        stop.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    # Held until the parent installed its own handlers: a SIGTERM in between is delivered
    # now, to ours, instead of killing the process before it could finish anything.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    parent = multiprocessing.parent_process()
    runtime = Runtime.build(settings)
    workers = Workers(runtime)
    workers.start()
    try:
        # A timed wait: an untimed Event.wait() on a busy process sometimes missed the
        # handler's wake-up (about 1 SIGTERM in 150). And a child whose parent died (kill -9
        # of `hub worker`) stops too, rather than send on where no supervisor sees it.
        while not stop.wait(0.5):
            if parent is not None and not parent.is_alive():
                log.warning("worker: the `hub worker` parent is gone; stopping")
                break
    finally:
        workers.stop()
        runtime.close()


def serve_metrics(host: str, port: int, *, processes: int) -> None:
    """Prometheus metrics of this command's worker processes, on a thread of the parent.

    Spawned children write their values under PROMETHEUS_MULTIPROC_DIR (made here when
    unset, before any child starts), and the parent adds them up at each scrape.
    """
    from prometheus_client import REGISTRY, CollectorRegistry, multiprocess, start_http_server

    if processes == 1:
        start_http_server(port, addr=host, registry=REGISTRY)  # this very process works
        return
    directory = os.environ.setdefault(
        "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="hub-metrics-")
    )
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
    start_http_server(port, addr=host, registry=registry)


def run(settings: Settings, *, processes: int) -> int:
    if processes == 1:
        _serve(settings)
        return 0
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_serve, args=(settings,), name=f"hub-worker-{n}")
        for n in range(processes)
    ]

    def _forward(signum: int, _: FrameType | None) -> None:
        # Each child finishes its in-flight batch on SIGTERM; a second signal is the user's.
        for child in children:
            if child.is_alive():
                child.terminate()
        log.info("signal %d: stopping %d worker processes", signum, len(children))

    # Handlers first, and the signals held while children start (they inherit the mask and
    # unblock it once their own handlers are in): no moment where SIGTERM kills either side.
    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    try:
        for child in children:
            child.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)
    log.info("started %d worker processes", processes)
    while any(child.is_alive() for child in children):
        for child in children:
            child.join(timeout=0.5)
    return max((child.exitcode or 0) for child in children)
