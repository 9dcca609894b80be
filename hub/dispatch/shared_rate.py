"""The per-number send rate kept in Redis, so it is the hub's and not each process's
(RELIABILITY 30): `hub worker --processes 4` on three machines sends at the rate the number
may use, not twelve times it.

Each acquisition is one Lua script, one round trip: GCRA, the virtual scheduling algorithm of
`channels.ratelimit.TokenBucket`, run atomically in Redis on Redis's own clock (`TIME`), so
machines whose clocks disagree still share one schedule. The script reserves the next free
slot and answers how long to wait for it; the caller sleeps that long here, and sends. A slot
further ahead than the horizon (10 s) is not reserved: the caller comes back when it would
not be. So a process that dies while waiting strands at most one horizon of the number's
slots, and many processes queueing at once cannot push the schedule an hour ahead.

Redis out of reach, or refusing writes: fail closed. Nothing is sent without a reservation.
The caller asks again (0.1 s, doubling to 2 s) for up to `patience` (60 s), with one warning
when Redis stops answering and one when it answers again; after that the send fails as
retryable and `unavailable` without calling the provider, so its batch pauses the channel
with attempts unspent rather than hold a worker thread for as long as Redis is away.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from hub.channels.base import RetryableDeliveryError
from hub.dispatch.shared_store import Outage

# KEYS[1]: the budget's theoretical arrival time (TAT), in microseconds of Redis's clock.
# ARGV: the interval, the tolerance ((burst - 1) intervals), the horizon, all in µs, and
# "now" in µs: empty except in tests, which drive the clock by hand.
# Answers {1, µs to wait for the slot reserved} or {0, µs until a reservation may be made}.
GCRA = """
if redis.replicate_commands then redis.replicate_commands() end
local now = tonumber(ARGV[4])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local interval, tolerance, horizon = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > horizon then return {0, wait - horizon} end
local later = tat + interval
local keep = math.floor((later - now) / 1000) + 1000
redis.call('SET', KEYS[1], string.format('%.0f', later), 'PX', keep)
if wait < 0 then wait = 0 end
return {1, wait}
"""
HORIZON = 10.0  # seconds ahead a slot may be reserved
PATIENCE = 60.0  # seconds to keep asking an absent Redis before the send fails (retryable)
FIRST_BACKOFF, LONGEST_BACKOFF = 0.1, 2.0


class SharedPacer:
    """Budgets under `{namespace}:pace:{key}` in Redis, one for every process that uses the
    same Redis and namespace. Used from one event loop (the send engine's), which closes it."""

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        namespace: str,
        horizon: float = HORIZON,
        patience: float = PATIENCE,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.horizon = horizon
        self.patience = patience
        self.outage = Outage("shared rate limit")
        self._gcra = client.register_script(GCRA)

    def limiter(self, key: str, *, rate_per_second: float, burst: int = 1) -> SharedBucket:
        return SharedBucket(self, f"{self.namespace}:pace:{key}", rate_per_second, burst)

    async def reserve(self, key: str, *args: int | str) -> tuple[bool, int]:
        """Run the script once: (reserved, µs to wait). Raises RedisError."""
        reserved, wait = await self._gcra(keys=[key], args=list(args))
        return bool(reserved), int(wait)

    async def aclose(self) -> None:
        await self.client.aclose()


class SharedBucket:
    """At most `burst` at once, then `rate_per_second`, across every process of the hub.

    `clock` (seconds) replaces Redis's clock and `sleep` the real one: tests only.
    """

    def __init__(
        self,
        pacer: SharedPacer,
        key: str,
        rate_per_second: float,
        burst: int = 1,
        *,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
    ) -> None:
        if rate_per_second <= 0:
            raise ValueError(f"rate_per_second must be positive, not {rate_per_second}")
        if burst < 1:
            raise ValueError(f"burst must be at least 1, not {burst}")
        self.pacer = pacer
        self.key = key
        self.rate_per_second = rate_per_second
        self.burst = burst
        # Whole microseconds, rounded up: rounding can only make the rate come out lower.
        self._interval = math.ceil(1_000_000 / rate_per_second)
        self._tolerance = (burst - 1) * self._interval
        self._horizon = int(pacer.horizon * 1_000_000)
        self._clock = clock
        self._sleep = sleep

    async def reserve(self) -> tuple[bool, int]:
        """One round trip: (reserved, µs to wait). Raises RedisError."""
        now = "" if self._clock is None else str(round(self._clock() * 1_000_000))
        return await self.pacer.reserve(
            self.key, self._interval, self._tolerance, self._horizon, now
        )

    async def acquire(self) -> None:
        """Wait for a slot of the shared schedule.

        Raises:
            RetryableDeliveryError: (unavailable) Redis could not be asked for `patience`
                seconds; the caller must not send.
        """
        backoff, failing_since = FIRST_BACKOFF, None
        while True:
            try:
                reserved, wait = await self.reserve()
            except RedisError as exc:
                failing_since = failing_since or time.monotonic()
                self.pacer.outage.failed(
                    exc, meanwhile="paced sends (SMS, calls) wait for it; none goes out unpaced"
                )
                if time.monotonic() - failing_since >= self.pacer.patience:
                    raise RetryableDeliveryError(
                        f"the shared rate limit in Redis did not answer for "
                        f"{self.pacer.patience:.0f} s ({type(exc).__name__}: {exc}); "
                        "nothing was sent",
                        unavailable=True,
                    ) from exc
                await self._sleep(backoff * random.uniform(0.5, 1.0))  # noqa: S311 - jitter
                backoff = min(backoff * 2, LONGEST_BACKOFF)
                continue
            self.pacer.outage.answered()
            if reserved:
                if wait > 0:
                    await self._sleep(wait / 1_000_000)
                return
            # Beyond the horizon: ask again when it no longer is, each waiter at a slightly
            # different moment so the waiters of every process do not all ask at once.
            jitter = random.uniform(0, self._interval)  # noqa: S311 - jitter, not a secret
            await self._sleep((wait + jitter) / 1_000_000)
