"""The event relay as workers run it: sweep due messages, then claim, POST and record a batch.

The requests go out on the send engine's event loop, through a webhook channel of their own
(same SSRF vetting, no redirects), each signed with its endpoint's secret.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import Retrying, retry_if_exception_type, stop_after_delay, wait_exponential

from hub.channels import signing
from hub.channels.base import DeliveryError
from hub.channels.webhook import WebhookChannel
from hub.db.base import utcnow
from hub.events import relay

log = logging.getLogger("hub.events")
T = TypeVar("T")


class Runner(Protocol):
    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run on the engine's loop and wait for the result."""
        ...


class EventRelay:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        runner: Runner,
        channel: WebhookChannel,
        schedule: Sequence[float],
        batch_size: int = 100,
        queue_lease: dt.timedelta = dt.timedelta(minutes=5),
        send_lease: dt.timedelta = dt.timedelta(minutes=2),
    ) -> None:
        self.sessions = sessions
        self.runner = runner
        self.channel = channel
        self.schedule = tuple(schedule)
        self.batch_size = batch_size
        self.queue_lease = queue_lease
        self.send_lease = send_lease

    def sweep(self) -> list[list[int]]:
        """Batches of due message ids, leased for the queue; enqueue each after this returns."""
        with self.sessions() as session, session.begin():
            ids = relay.due(session, now=utcnow(), queue_lease=self.queue_lease)
        return [ids[i : i + self.batch_size] for i in range(0, len(ids), self.batch_size)]

    def deliver(self, ids: Sequence[int]) -> relay.Tally:
        with self.sessions() as session, session.begin():
            claimed = relay.claim(session, ids, now=utcnow(), send_lease=self.send_lease)
        if not claimed:
            return relay.Tally()  # a duplicate job: someone else has these
        answers = self.runner.run(self._post_all(claimed))
        results = list(zip(claimed, answers, strict=True))
        # The endpoints have these now: a busy database must not make us send them twice.
        for attempt in Retrying(
            retry=retry_if_exception_type((OperationalError, TimeoutError)),
            stop=stop_after_delay(self.send_lease.total_seconds() / 2),
            wait=wait_exponential(multiplier=0.1, max=5),
            reraise=True,
        ):
            with attempt, self.sessions() as session, session.begin():
                tally = relay.record(session, results, now=utcnow(), schedule=self.schedule)
        if tally.retrying or tally.failed:
            log.info(
                "event batch of %d: %d delivered, %d to retry, %d given up",
                len(claimed),
                tally.delivered,
                tally.retrying,
                tally.failed,
            )
        return tally

    async def _post_all(self, claimed: Sequence[relay.Claimed]) -> list[relay.Answer]:
        return list(await asyncio.gather(*(self._post(message) for message in claimed)))

    async def _post(self, message: relay.Claimed) -> relay.Answer:
        body = json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False).encode()
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        code: str | None = None
        try:
            receipt = await self.channel.post(
                message.url,
                body,
                msg_id=message.webhook_id,
                secret=signing.parse_secret(message.secret),
            )
            status = _status(receipt.provider_id)
        except DeliveryError as exc:
            code = exc.code
            status = _status(exc.code)
            error = str(exc)[: relay.ERROR_CHARS]
        except Exception as exc:  # a bug must leave the message retryable, and say so
            log.exception("posting event message %s crashed", message.id)
            error = f"crashed: {exc!r}"[: relay.ERROR_CHARS]
        elapsed = round((time.perf_counter() - started) * 1000)
        return relay.Answer(status=status, error=error, code=code, duration_ms=elapsed)

    def close(self) -> None:
        self.runner.run(self.channel.aclose())


def _status(code: str | None) -> int | None:
    """The HTTP status inside a webhook channel's receipt or error code ("204", "410")."""
    return int(code) if code is not None and code.isdigit() else None
