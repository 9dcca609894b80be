"""The send engine: one asyncio loop in its own thread, owning every adapter and its pool.

Dramatiq actors are synchronous and run on worker threads; adapters are async and keep
pooled connections (SMTP sessions, HTTP keep-alive) that must live on one loop. Actors hand
a batch to this loop and wait for its results, so pools are shared across threads and jobs.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Coroutine, Mapping, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from hub.channels.base import (
    AmbiguousDeliveryError,
    ChannelAdapter,
    ChannelOptions,
    DeliveryError,
    OutgoingMessage,
    Receipt,
    RetryableDeliveryError,
)
from hub.channels.failover import FailoverChannel
from hub.channels.ratelimit import LocalPacer, Pacer
from hub.domain import Channel
from hub.metrics import PROVIDER_ERRORS, PROVIDER_SECONDS

log = logging.getLogger("hub.send")
T = TypeVar("T")


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop  # comes with uvicorn[standard]; about a third less CPU per socket send
    except ImportError:
        return asyncio.new_event_loop()
    loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    return loop


class SendEngine:
    def __init__(
        self,
        chosen: Mapping[Channel, tuple[type[ChannelAdapter], ChannelOptions]],
        *,
        backups: Mapping[Channel, Sequence[ChannelOptions]] | None = None,
        trip_after: int = 3,
        rest: float = 30.0,
        pacer: Pacer | None = None,
    ) -> None:
        """`backups`: more option sets for a channel's adapter class, tried in order when
        the first provider keeps failing (see channels.failover). `pacer`: where paced
        adapters keep their budgets (this process's own when None); closed with the engine."""
        self._pacer: Pacer = pacer or LocalPacer()
        self._chosen = dict(chosen)
        self._backups = dict(backups or {})
        self._trip_after, self._rest = trip_after, rest
        self._loop = _new_loop()
        self._thread = threading.Thread(target=self._run, name="hub-send", daemon=True)
        self._adapters: dict[Channel, ChannelAdapter] = {}
        self._thread.start()
        self._call(self._open()).result()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def _call(self, coroutine: object) -> Future[object]:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)  # type: ignore[arg-type]

    async def _open(self) -> None:
        # One adapter object per (class, options): SMS and voice may share a Twilio client.
        built: dict[tuple[type[ChannelAdapter], int], ChannelAdapter] = {}
        for channel, (cls, options) in self._chosen.items():
            key = (cls, id(options))
            if key not in built:
                built[key] = self._build(cls, options)
            self._adapters[channel] = built[key]
            if backups := self._backups.get(channel):
                providers = [(f"{cls.name}:1", built[key])]
                providers += [
                    (f"{cls.name}:{n}", self._build(cls, more)) for n, more in enumerate(backups, 2)
                ]
                self._adapters[channel] = FailoverChannel(
                    providers, trip_after=self._trip_after, rest=self._rest
                )

    def _build(self, cls: type[ChannelAdapter], options: ChannelOptions) -> ChannelAdapter:
        if getattr(cls, "paced", False):  # it keeps its budget where the hub says
            return cls.from_options(options, pacer=self._pacer)  # type: ignore[call-arg]
        return cls.from_options(options)

    def provider(self, channel: Channel) -> str:
        return self._adapters[channel].name

    def rate(self, channel: Channel) -> float | None:
        rate: float | None = getattr(self._adapters[channel], "rate_per_second", None)
        return rate

    def providers(self) -> dict[str, str]:
        return {channel.value: adapter.name for channel, adapter in self._adapters.items()}

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run any coroutine on the engine's loop (the event relay's requests) and wait."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt | DeliveryError]:
        future = self._call(self._send_all(messages))
        results: list[Receipt | DeliveryError] = future.result()  # type: ignore[assignment]
        return results

    async def _send_all(self, messages: Sequence[OutgoingMessage]) -> list[Receipt | DeliveryError]:
        return list(await asyncio.gather(*(self._send_one(m) for m in messages)))

    async def _send_one(self, message: OutgoingMessage) -> Receipt | DeliveryError:
        adapter = self._adapters[message.channel]
        channel = message.channel.value
        started = time.perf_counter()
        try:
            receipt = await adapter.send(message)
        except DeliveryError as exc:
            kind = "ambiguous" if isinstance(exc, AmbiguousDeliveryError) else "permanent"
            kind = "retryable" if isinstance(exc, RetryableDeliveryError) else kind
            PROVIDER_ERRORS.labels(channel, adapter.name, kind).inc()
            return exc
        except Exception as exc:
            PROVIDER_ERRORS.labels(channel, adapter.name, "crash").inc()
            # An adapter bug must not lose the message: log it loudly and let the delivery
            # be retried (and parked when it keeps failing), never silently dropped.
            log.exception("adapter %s crashed on delivery %s", adapter.name, message.delivery_id)
            return RetryableDeliveryError(f"adapter {adapter.name} crashed: {exc!r}"[:500])
        provider = receipt.provider or adapter.name
        PROVIDER_SECONDS.labels(channel, provider).observe(time.perf_counter() - started)
        return receipt

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        try:
            self._call(self._close()).result(timeout=10)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)

    async def _close(self) -> None:
        for adapter in {id(a): a for a in self._adapters.values()}.values():
            try:
                await adapter.aclose()
            except Exception:
                log.exception("closing adapter %s", adapter.name)
        await self._pacer.aclose()
