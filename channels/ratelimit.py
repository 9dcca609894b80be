"""An asyncio token bucket that keeps a sender under its provider's per-number rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable


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
