"""The dispatcher: each step is one short transaction around the pure parts, queue-agnostic.

Workers call `fan_out`, `deliver` and `sweep` and enqueue what each returns; the API never
calls them. `Sender` is the seam to the channel adapters (an event loop in its own thread).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import or_, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from tenacity import (
    Retrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from hub.channels.base import DeliveryError, OutgoingMessage, Receipt, RetryableDeliveryError
from hub.db.base import utcnow
from hub.db.models import Delivery, Notification
from hub.dispatch import claim, fanout, outcomes, sweeper
from hub.dispatch.audience import NO_CAPS
from hub.dispatch.compose import Composer, renderable
from hub.dispatch.lease import LeaseKeeper
from hub.dispatch.outcome_writer import Recorded
from hub.dispatch.pause import PauseBoard, Pauses
from hub.domain import Channel, DeliveryState, NotificationState
from hub.metrics import DELIVERIES
from hub.preferences.model import Caps
from hub.services.hashing import AddressHasher

log = logging.getLogger("hub.dispatch")


class Sender(Protocol):
    def provider(self, channel: Channel) -> str: ...

    def rate(self, channel: Channel) -> float | None:
        """Messages per second the channel's adapter paces itself to, if it does."""
        ...

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt | DeliveryError]:
        """Send concurrently; one result per message, in order. Never raises for a message."""
        ...


@dataclass(frozen=True)
class Limits:
    fanout_batch: int = 500
    delivery_batch: int = 100
    max_attempts: int = 8
    first_retry: float = 10.0  # seconds; doubling per attempt
    caps: Caps = NO_CAPS  # the hub's frequency caps (a topic's own take precedence)
    queue_lease: dt.timedelta = dt.timedelta(minutes=5)
    send_lease: dt.timedelta = dt.timedelta(minutes=2)


@dataclass
class FanOutStep:
    deliver: list[tuple[Channel, list[int]]] = field(default_factory=list)
    recipients: int = 0
    done: bool = True


class TakenHere:
    """The ids this process's claims topped up, until their own job comes by.

    Only a hint for which jobs to check with a read before claiming: a wrong or lost entry
    costs a read or a write, never a send (the claim decides).
    """

    def __init__(self, most: int = 100_000) -> None:
        self._ids: dict[int, None] = {}  # in insertion order: the oldest are dropped first
        self._most = most
        self._lock = threading.Lock()

    def add(self, ids: Iterable[int]) -> None:
        with self._lock:
            for i in ids:
                self._ids[i] = None
            while len(self._ids) > self._most:
                del self._ids[next(iter(self._ids))]

    def took_all(self, ids: Sequence[int]) -> bool:
        """Whether every id was topped up here; forgets them (their job has come)."""
        with self._lock:
            found = [i for i in ids if self._ids.pop(i, 0) is None]
        return bool(ids) and len(found) == len(ids)


class Dispatcher:
    def __init__(
        self,
        *,
        sessions: sessionmaker[Session],
        reads: sessionmaker[Session],
        composer: Composer,
        sender: Sender,
        hasher: AddressHasher,
        limits: Limits,
        clock: Callable[[], dt.datetime] = utcnow,
        pauses: PauseBoard | None = None,
    ) -> None:
        """`clock`: where every step reads the time (tests move it across quiet hours).
        `pauses`: where channel pauses are kept; this process's own when None."""
        self.sessions = sessions
        self.reads = reads  # read-only: on SQLite they do not wait for the write lock
        self.composer = composer
        self.sender = sender
        self.hasher = hasher
        self.limits = limits
        self.clock = clock
        self.pauses: PauseBoard = pauses or Pauses(first=limits.first_retry)
        self._keys_forgotten = dt.datetime.min.replace(tzinfo=dt.UTC)
        self._topped_up = TakenHere()

    def fan_out(self, notification_id: int) -> FanOutStep:
        """One batch of recipients; `done` False means call again for the next.

        One notification per job: bringing other waiting ones along (tried for issue 19)
        made two fan-out threads plan the same notifications twice, and cost more CPU than
        the jobs it saved.
        """
        now = self.clock()
        with self.reads() as session:
            notification = session.get(Notification, notification_id)
            if notification is None:
                log.warning("fan-out of notification %s: it no longer exists", notification_id)
                return FanOutStep()
            if notification.state is not NotificationState.ACCEPTED:
                return FanOutStep()  # fanned out by another job, cancelled, or scheduled
            plan = self._plan(session, notification, now)
            if plan is None:
                return FanOutStep()
        with self.sessions() as session, session.begin():
            result = fanout.apply_batch(session, plan, queue_lease=self.limits.queue_lease, now=now)
        step = FanOutStep(recipients=result.recipients, done=result.done)
        size = self.limits.delivery_batch
        for channel, ids in result.queued.items():
            for start in range(0, len(ids), size):
                step.deliver.append((channel, ids[start : start + size]))
        return step

    def _plan(
        self, session: Session, notification: Notification, now: dt.datetime
    ) -> fanout.Plan | None:
        return fanout.plan_batch(
            session,
            notification.id,
            renderable=renderable(self.composer.compiled(notification)),
            hasher=self.hasher,
            batch_size=self.limits.fanout_batch,
            queue_lease=self.limits.queue_lease,
            now=now,
            caps=self.limits.caps,
        )

    def deliver(self, channel: Channel, ids: Sequence[int]) -> Recorded:
        """Claim, re-check, render, send and record a batch of deliveries on one channel.

        A paced channel (1 SMS a second per number) is worked in chunks it can send within
        a quarter of the send lease, so no claimed row outlives its lease while it waits.
        """
        total = Recorded()
        chunk = len(ids)
        if (rate := self.sender.rate(channel)) is not None:
            chunk = max(1, int(rate * self.limits.send_lease.total_seconds() / 4))
        for start in range(0, len(ids), chunk):
            if start:
                self._still_working_on(ids[start:])
            done = self._deliver(channel, ids[start : start + chunk])
            total.sent += done.sent
            total.retrying += done.retrying
            total.failed += done.failed
            total.gave_up += done.gave_up
            total.outcomes += done.outcomes
        return total

    def _deliver(self, channel: Channel, ids: Sequence[int]) -> Recorded:
        now = self.clock()
        admitted = self.pauses.admit(channel, now)
        if admitted.put_off_until is not None:
            self._put_off(ids, admitted.put_off_until)
            return Recorded()
        try:
            if self._topped_up.took_all(ids):
                with self.reads() as session:
                    if not claim.any_claimable(session, ids, now=now):
                        return Recorded()  # an earlier job here took them: no write needed
            top_up = None
            if not admitted.probe and self.sender.rate(channel) is None:
                # A probe of a paused channel stays one job's size; a paced channel's jobs
                # are sized to its rate (`deliver`).
                top_up = claim.TopUp(channel, self.limits.delivery_batch - len(ids))
            with self.sessions() as session, session.begin():
                claimed = claim.claim(
                    session, ids, now=now, send_lease=self.limits.send_lease, top_up=top_up
                )
            if not claimed:
                return Recorded()  # a duplicate job: someone else has these rows
            asked = set(ids)
            self._topped_up.add(c.id for c in claimed if c.id not in asked)
            lease = LeaseKeeper(
                self.sessions, claimed, lease=self.limits.send_lease, clock=self.clock
            )
            with lease:
                recorded = self._send_and_record(claimed, now)
        finally:
            if admitted.probe:
                self.pauses.probed(channel)  # a no-op once the answers paused or resumed it
        for (name, outcome), count in recorded.outcomes.items():
            DELIVERIES.labels(name, outcome).inc(count)
        return recorded

    def _send_and_record(self, claimed: Sequence[claim.Claimed], now: dt.datetime) -> Recorded:
        with self.reads() as session:
            loaded = self.composer.load(session, claimed, now)
        composed = self.composer.compose(loaded, now)
        messages = [item.message for item in composed.outgoing]
        answers = self.sender.send(messages) if messages else []
        results = list(composed.failed)
        for item, answer in zip(composed.outgoing, answers, strict=True):
            provider = self.sender.provider(item.delivery.channel)
            results.append(
                outcomes.Result(item.delivery, item.topic_key, provider, answer, item.riders)
            )
        answered = self.clock()
        paused_until = self._pause_or_resume(claimed[0].channel, answers, answered)
        # The provider has these messages now: a busy or briefly unreachable database must
        # not lose what it answered (the rows would otherwise end up `unknown`).
        for attempt in Retrying(
            retry=retry_if_exception_type((OperationalError, TimeoutError)),
            stop=stop_after_delay(self.limits.send_lease.total_seconds() / 2),
            wait=wait_exponential(multiplier=0.1, max=5),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        ):
            with attempt, self.sessions() as session, session.begin():
                recorded = outcomes.record(
                    session,
                    results,
                    composed.held,
                    now=answered,
                    max_attempts=self.limits.max_attempts,
                    first_retry=self.limits.first_retry,
                    hasher=self.hasher,
                    paused_until=paused_until,
                )
        if recorded.retrying or recorded.failed:
            log.info(
                "delivered batch of %d: %d sent, %d to retry, %d failed, %d held",
                len(claimed),
                recorded.sent,
                recorded.retrying,
                recorded.failed,
                len(composed.held),
            )
        return recorded

    def _pause_or_resume(
        self, channel: Channel, answers: Sequence[Receipt | DeliveryError], now: dt.datetime
    ) -> dt.datetime | None:
        """A batch the provider answered nothing but "unavailable" pauses the channel; any
        other answer resumes it (a 451 or a 550 is about one message: the provider is up)."""
        down = [a for a in answers if isinstance(a, RetryableDeliveryError) and a.unavailable]
        if not down or len(down) < len(answers):
            if answers:
                self.pauses.resume(channel, now)
            return None
        wait = max((a.retry_after or 0.0 for a in down), default=0.0)
        return self.pauses.trip(channel, now, why=down[0].message, retry_after=wait)

    def _still_working_on(self, ids: Sequence[int]) -> None:
        """The rows a paced job has not reached yet are not stranded (sweeper.STRANDED_AFTER)
        though their queue may be empty: this worker holds their job."""
        self._update_queued(ids, updated_at=self.clock())

    def _put_off(self, ids: Sequence[int], until: dt.datetime) -> None:
        """A paused channel's batch waits for the pause to end, with no call and no attempt
        spent (and no claim before it: `not_before`); the sweeper hands it back then. A
        retry's own backoff (or Retry-After) that ends later stays as it is."""
        later = or_(Delivery.not_before.is_(None), Delivery.not_before <= until)
        self._update_queued(ids, later, due_at=until, not_before=until)

    def _update_queued(self, ids: Sequence[int], *where: Any, **values: Any) -> None:
        with self.sessions() as session, session.begin():
            session.execute(
                update(Delivery)
                .where(Delivery.id.in_(ids), Delivery.state == DeliveryState.QUEUED, *where)
                .values(**values)
                .execution_options(synchronize_session=False)
            )

    def sweep(self, idle: frozenset[str] = frozenset()) -> sweeper.Swept:
        """`idle`: the queues empty now (see sweeper.STRANDED_AFTER)."""
        now = self.clock()
        with self.sessions() as session, session.begin():
            swept = sweeper.sweep(
                session,
                now=now,
                queue_lease=self.limits.queue_lease,
                batch_size=self.limits.delivery_batch,
                idle=idle,
            )
            # Sweeps run every few seconds; expired idempotency keys need a pass a minute.
            if now - self._keys_forgotten >= dt.timedelta(minutes=1):
                sweeper.forget_expired_keys(session, now=now)
                self._keys_forgotten = now
        if swept.lost_in_flight:
            log.warning(
                "sweeper: %d deliveries were in flight when their worker stopped",
                swept.lost_in_flight,
            )
        return swept
