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
    from workers.service import Workers

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
    runtime = Runtime.build(settings)
    workers = Workers(runtime)
    workers.start()
    try:
        stop.wait()
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
    for child in children:
        child.start()
    log.info("started %d worker processes", processes)

    def _forward(signum: int, _: FrameType | None) -> None:
        # Each child finishes its in-flight batch on SIGTERM; a second signal is the user's.
        for child in children:
            if child.is_alive():
                child.terminate()
        log.info("signal %d: stopping %d worker processes", signum, len(children))

    signal.signal(signal.SIGTERM, _forward)
    signal.signal(signal.SIGINT, _forward)
    for child in children:
        child.join()
    return max((child.exitcode or 0) for child in children)
