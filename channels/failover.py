"""Several providers for one channel: a message goes to the first healthy one, and moves on
at once when a provider answers with a retryable error (busy, 421, 503, unreachable).

Each provider has a breaker: after `trip_after` retryable failures in a row it is skipped for
`rest` seconds, then tried again with the next message; a success closes it. So traffic moves
to the next provider while one keeps failing, and comes back when it recovers (RELIABILITY
5-6). Permanent refusals (a bad address) and ambiguous outcomes are the message's, not the
provider's: they are returned as they are and never sent elsewhere, which could duplicate.
Each provider keeps its own pacing (its token bucket) and its own connection pool.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar

from hub.channels.base import (
    ChannelAdapter,
    ChannelOptions,
    OutgoingMessage,
    Receipt,
    RetryableDeliveryError,
)
from hub.domain import Channel

log = logging.getLogger("hub.failover")


@dataclass
class Breaker:
    label: str
    failures: int = 0
    open_until: float = 0.0

    def usable(self, now: float) -> bool:
        return now >= self.open_until


class FailoverChannel:
    """Wraps `(label, adapter)` pairs, tried in order of preference."""

    name: ClassVar[str] = "failover"
    kinds: ClassVar[frozenset[Channel]] = frozenset(Channel)
    options_model: ClassVar[type[ChannelOptions]] = ChannelOptions

    def __init__(
        self,
        providers: Sequence[tuple[str, ChannelAdapter]],
        *,
        trip_after: int = 3,
        rest: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not providers:
            raise ValueError("failover needs at least one provider")
        self.providers = list(providers)
        self.breakers = [Breaker(label) for label, _ in providers]
        self.trip_after = trip_after
        self.rest = rest
        self.clock = clock
        rates = [getattr(adapter, "rate_per_second", None) for _, adapter in providers]
        known = [r for r in rates if r is not None]
        self.rate_per_second = sum(known) if len(known) == len(rates) else None

    @classmethod
    def from_options(cls, options: Any) -> ChannelAdapter:
        raise TypeError("a failover channel is built from its providers, not from options")

    def _order(self) -> list[int]:
        """Usable providers in order of preference; if none is, all of them (never give up
        without trying: the breaker may be wrong, and a retry later costs more)."""
        now = self.clock()
        usable = [i for i, breaker in enumerate(self.breakers) if breaker.usable(now)]
        return usable or list(range(len(self.providers)))

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Raises the last provider's RetryableDeliveryError when every one failed, or the
        first Permanent or Ambiguous error met."""
        last: RetryableDeliveryError | None = None
        for index in self._order():
            label, adapter = self.providers[index]
            breaker = self.breakers[index]
            try:
                receipt = await adapter.send(message)
            except RetryableDeliveryError as exc:
                last = exc
                self._failed(breaker, exc)
                continue
            if breaker.failures:
                log.info("provider %s works again", label)
            breaker.failures, breaker.open_until = 0, 0.0
            return replace(receipt, provider=label)
        assert last is not None
        raise last

    def _failed(self, breaker: Breaker, exc: RetryableDeliveryError) -> None:
        breaker.failures += 1
        if breaker.failures >= self.trip_after:
            breaker.open_until = self.clock() + self.rest
            log.warning(
                "provider %s failed %d times in a row (%s); resting it for %.0f s",
                breaker.label,
                breaker.failures,
                exc,
                self.rest,
            )

    def health(self) -> dict[str, dict[str, Any]]:
        now = self.clock()
        return {
            b.label: {"failures": b.failures, "resting": not b.usable(now)} for b in self.breakers
        }

    async def aclose(self) -> None:
        for _, adapter in self.providers:
            await adapter.aclose()
