"""Build the Dramatiq broker a process uses, from the broker URL in settings.

No broker is created at import time: the composition root (`hub serve`, `hub worker`, a test)
calls `make_broker` and binds actors to the broker it gets back.
"""

from __future__ import annotations

import threading
from urllib.parse import urlsplit

from dramatiq import Broker
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.time_limit import TimeLimit, _CtypesTimeoutManager


class BrokerConfigError(ValueError):
    pass


def make_broker(url: str | None, *, namespace: str = "hub") -> Broker:
    """None: the in-process broker of the embedded default. redis:// or rediss://: Redis."""
    if url is None:
        broker = StubBroker()
        for middleware in broker.middleware:
            if isinstance(middleware, TimeLimit) and isinstance(
                middleware.manager, _CtypesTimeoutManager
            ):
                middleware.manager = _StoppableTimeouts(middleware.manager)
        broker.emit_after("process_boot")  # starts the time-limit thread
        return broker
    scheme = urlsplit(url).scheme
    if scheme in {"redis", "rediss"}:
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, namespace=namespace)  # type: ignore[no-untyped-call]
    raise BrokerConfigError(
        f"HUB_BROKER_URL has scheme {scheme!r}; Hub supports redis:// and rediss://"
    )


class _StoppableTimeouts(_CtypesTimeoutManager):
    """Dramatiq's time-limit thread, which runs for ever once started, made to stop with its
    broker (`close`): a process that builds and closes many in-process brokers (the test
    suite) would otherwise keep one waking thread per broker, hundreds contending for the GIL.
    """

    def __init__(self, original: _CtypesTimeoutManager) -> None:
        super().__init__(int(original.interval * 1000), logger=original.logger)  # type: ignore[no-untyped-call]
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            try:
                self._handle_deadlines()  # type: ignore[no-untyped-call]
            except Exception:  # as dramatiq's own loop: one bad round must not end the thread
                self.logger.exception("Unhandled error while running the time limit handler.")


def close(broker: Broker) -> None:
    """Close the broker, and stop the in-process broker's time-limit thread."""
    for middleware in broker.middleware:
        manager = getattr(middleware, "manager", None)
        if isinstance(manager, _StoppableTimeouts):
            manager.stopped.set()
    broker.close()
