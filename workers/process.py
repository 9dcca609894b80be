"""`hub worker`: N worker processes against a real broker, stopped cleanly by SIGTERM/SIGINT.

Each process builds its own runtime (database pool, broker connection, adapters); nothing
is shared across a fork. The parent only starts, watches and stops them.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
from types import FrameType

from hub.runtime import Runtime
from hub.settings import Settings

log = logging.getLogger("hub.workers")


def _serve(settings: Settings) -> None:
    from workers.service import Workers

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
