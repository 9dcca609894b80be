"""The Redis that every process of a hub shares for pacing and pauses: how to reach it, and
how its absence is told (RELIABILITY 30).

Clients answer within two seconds or fail, and retry once at once (a pooled connection that a
restarted Redis closed is opened again without anyone noticing); what to do for longer is the
caller's decision, made knowingly: the rate limit fails closed (`shared_rate`), the pauses
fall back to each process's own (`shared_pause`).
"""

from __future__ import annotations

import logging
import threading
import time

import redis
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger("hub.dispatch")
TIMEOUT = 2.0  # seconds to connect, and for an answer


def sync_client(url: str) -> redis.Redis:
    """For the dispatcher's threads (the pauses)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=Retry(NoBackoff(), 1),
    )


def async_client(url: str) -> aioredis.Redis:
    """For the send engine's loop (the rate limit); it connects on first use, on that loop."""
    return aioredis.Redis.from_url(
        url,
        socket_timeout=TIMEOUT,
        socket_connect_timeout=TIMEOUT,
        retry=AsyncRetry(NoBackoff(), 1),
    )


class Outage:
    """One warning when Redis stops answering and one when it answers again, however many
    sends and batches ran into it in between (a thousand waiting sends, one pair of lines)."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._since: float | None = None
        self._lock = threading.Lock()

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException, *, meanwhile: str) -> None:
        """Redis did not answer; `meanwhile` says what Hub does instead (never sending unpaced)."""
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning(
            "%s: Redis does not answer (%s: %s); %s", self.what, type(exc).__name__, exc, meanwhile
        )

    def answered(self) -> bool:
        """Redis answered; True when that ends an outage."""
        if self._since is None:  # the usual case, without the lock
            return False
        with self._lock:
            since, self._since = self._since, None
        if since is None:
            return False
        log.warning("%s: Redis answers again after %.1f s", self.what, time.monotonic() - since)
        return True
