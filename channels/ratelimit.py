"""Keeping a sender under its provider's per-number rate: the limiter an adapter is given, and
this process's own implementation of it (an asyncio token bucket).

An adapter does not choose where its budget lives. It asks the `Pacer` it was given for the
limiter of a key (its From number); the composition root decides whether that is a bucket in
this process (`LocalPacer`, the embedded default, where one process sends everything) or one
that every process and machine of the hub shares (`hub.dispatch.shared_rate`, with Redis).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Protocol


class RateLimiter(Protocol):
    async def acquire(self) -> None:
        """Return when this caller may send one message under the budget.

        Raises:
            RetryableDeliveryError: the budget could not be consulted for too long (a shared
                store out of reach); nothing may be sent, and nothing was.
        """
        ...


class Pacer(Protocol):
    """Where budgets live. The same key always names the same budget."""

    def limiter(self, key: str, *, rate_per_second: float, burst: int = 1) -> RateLimiter:
        """The limiter of `key`: at most `burst` at once, then `rate_per_second`."""
        ...

    async def aclose(self) -> None:
        """Release what the pacer holds; called once, from the loop that used it."""
        ...


class TokenBucket:
    """At most `burst` acquisitions at once, then `rate_per_second` on average, in call order.

    Implemented as GCRA (a virtual scheduling clock): each `acquire` reserves the next free
    slot synchronously and then sleeps until it, so waiters never race or wake as a herd and
    the cost is one subtraction per call even at hundreds per second. A waiter cancelled while
    sleeping gives up its slot: the rate can only come out lower than configured, never higher.

    `clock` and `sleep` are injectable so tests can drive time by hand.
    """

    def __init__(
        self,
        rate_per_second: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be positive, not {rate_per_second}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._interval = 1.0 / rate_per_second
        self._tolerance = (burst - 1) * self._interval
        self._clock = clock
        self._sleep = sleep
        self._next_slot = clock()  # the theoretical arrival time of the next acquisition

    def delay(self) -> float:
        """Reserve the next slot and return how long to wait for it (0 when a token is free)."""
        now = self._clock()
        slot = max(self._next_slot, now)
        self._next_slot = slot + self._interval
        return max(0.0, slot - self._tolerance - now)

    async def acquire(self) -> None:
        """Wait for a token. Never raises except on cancellation."""
        wait = self.delay()
        if wait > 0:
            await self._sleep(wait)


class LocalPacer:
    """Budgets in this process only: right when this process is the only sender."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def limiter(self, key: str, *, rate_per_second: float, burst: int = 1) -> TokenBucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(rate_per_second, burst)
        return bucket

    async def aclose(self) -> None:
        return None
