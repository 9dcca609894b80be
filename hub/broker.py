"""Build the Dramatiq broker a process uses, from the broker URL in settings.

No broker is created at import time: the composition root (`hub serve`, `hub worker`, a test)
calls `make_broker` and binds actors to the broker it gets back.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from dramatiq import Broker
from dramatiq.brokers.stub import StubBroker


class BrokerConfigError(ValueError):
    pass


def make_broker(url: str | None, *, namespace: str = "hub") -> Broker:
    """None: the in-process broker of the embedded default. redis:// or rediss://: Redis."""
    if url is None:
        broker = StubBroker()
        broker.emit_after("process_boot")
        return broker
    scheme = urlsplit(url).scheme
    if scheme in {"redis", "rediss"}:
        from dramatiq.brokers.redis import RedisBroker

        return RedisBroker(url=url, namespace=namespace)  # type: ignore[no-untyped-call]
    raise BrokerConfigError(
        f"HUB_BROKER_URL has scheme {scheme!r}; Hub supports redis:// and rediss://"
    )
