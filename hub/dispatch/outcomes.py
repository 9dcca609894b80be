"""Record what became of each claimed delivery: the row, the timeline, and what must follow.

One bulk UPDATE and one bulk INSERT of events per batch. A transient failure goes back to
`queued` with a backoff (the sweeper re-enqueues it when due); a permanent one is final and,
when the provider says the address itself is dead (a hard bounce, a carrier opt-out), the
address is suppressed in the same transaction, so the next send already skips it.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.orm import Session

from hub.channels.base import (
    AmbiguousDeliveryError,
    DeliveryError,
    PermanentDeliveryError,
    Receipt,
    RetryableDeliveryError,
)
from hub.db.base import Base
from hub.db.models import Capture, DeadLetter, Delivery, Suppression
from hub.db.upsert import insert_ignoring_duplicates
from hub.dispatch import escalation, provider_status
from hub.dispatch.claim import Claimed
from hub.dispatch.fanout import DISPATCHER
from hub.domain import (
    Channel,
    DeferralReason,
    DeliveryState,
    EventType,
    FailureReason,
    SuppressionReason,
    WithdrawalReason,
)
from hub.queue import DELIVER
from hub.services import timeline
from hub.services.hashing import AddressHasher

# A resend under the same key is safe where the receiver can drop the copy: the e-mail
# Message-ID and the webhook-id. Twilio takes no idempotency key, so an SMS or call whose
# outcome is unknown stays `unknown` rather than risk a second text or a second call.
RESENDABLE = frozenset({Channel.EMAIL, Channel.WEBHOOK})
REPORTED = frozenset({Channel.SMS, Channel.VOICE})  # their providers call back with statuses
MAX_BACKOFF = 3600.0
log = logging.getLogger("hub.dispatch")


@dataclass(frozen=True, slots=True)
class Result:
    delivery: Claimed
    topic_key: str
    provider: str
    outcome: Receipt | DeliveryError
    riders: tuple[Claimed, ...] = ()  # a digest's other items, sent in the same message

    @property
    def deliveries(self) -> tuple[Claimed, ...]:
        return (self.delivery, *self.riders)


@dataclass(frozen=True, slots=True)
class Held:
    """A claimed delivery the re-check at send time stopped: refused or deferred since fan-out."""

    delivery: Claimed
    topic_key: str
    state: DeliveryState
    reason: str
    until: dt.datetime | None = None


@dataclass
class Recorded:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    gave_up: list[int] = field(default_factory=list)
    # (channel, state it was left in) -> deliveries: what the metrics count
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)


def backoff(attempts: int, retry_after: float | None, *, first: float = 10.0) -> float:
    """Seconds before the next attempt: `first`, doubling per attempt up to an hour, jittered;
    never sooner than the provider's Retry-After."""
    base = min(MAX_BACKOFF, first * 2 ** max(0, attempts - 1))
    jittered: float = base * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not a secret
    return max(retry_after or 0.0, jittered)


def record(
    session: Session,
    results: Sequence[Result],
    held: Sequence[Held] = (),
    *,
    now: dt.datetime,
    max_attempts: int,
    hasher: AddressHasher,
    first_retry: float = 10.0,
    paused_until: dt.datetime | None = None,
) -> Recorded:
    """Record the outcomes of rows still held under their claim.

    `paused_until`: the channel was paused; a delivery the provider refused only for being
    unavailable waits until then without spending its attempt.

    A row the sweeper took back (its lease ran out while this worker stalled) belongs to
    whoever claimed it next: this worker's answer is only logged, so it cannot overwrite the
    newer attempt or mark the resend's timeline twice.
    """
    claimed = [d for r in results for d in r.deliveries] + [h.delivery for h in held]
    mine = _still_held(session, claimed)
    if len(mine) < len(claimed):
        _log_stale(claimed, mine, results)
        results = [r for r in results if all(d.id in mine for d in r.deliveries)]
        held = [h for h in held if h.delivery.id in mine]
    batch = _Batch(now=now, max_attempts=max_attempts, hasher=hasher, first_retry=first_retry)
    batch.paused_until = paused_until
    for item in held:
        batch.hold(item)
    for result in results:
        if isinstance(result.outcome, Receipt):
            batch.sent(result, result.outcome)
        else:
            batch.failed(result, result.outcome)
    batch.flush(session)
    return batch.summary


def _still_held(session: Session, claimed: Sequence[Claimed]) -> set[int]:
    """Ids of the rows still `sending` under the attempt this worker claimed, locked until
    the transaction ends (SQLite's write lock is already held since BEGIN IMMEDIATE)."""
    attempts = {d.id: d.attempts for d in claimed}
    query = select(_TABLE.c.id, _TABLE.c.attempts).where(
        _TABLE.c.id.in_(list(attempts)), _TABLE.c.state == DeliveryState.SENDING
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {row.id for row in session.execute(query) if row.attempts == attempts[row.id]}


def _log_stale(claimed: Sequence[Claimed], mine: set[int], results: Sequence[Result]) -> None:
    answers = {d.id: r.outcome for r in results for d in r.deliveries}
    for d in claimed:
        if d.id not in mine:
            answer = answers.get(d.id)
            said = answer.provider_id if isinstance(answer, Receipt) else answer
            log.warning(
                "delivery %s attempt %d: its send lease ran out before this worker recorded "
                "it, and it was taken back; the provider's answer (%s) is not recorded",
                d.id,
                d.attempts,
                said if answer is not None else "held before sending",
            )


class _Batch:
    def __init__(
        self, *, now: dt.datetime, max_attempts: int, hasher: AddressHasher, first_retry: float
    ) -> None:
        self.now = now
        self.max_attempts = max_attempts
        self.first_retry = first_retry
        self.hasher = hasher
        self.summary = Recorded()
        self.updates: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.captures: list[dict[str, Any]] = []
        self.suppressions: list[dict[str, Any]] = []
        self.reported: list[str] = []  # SIDs whose status callbacks may have come first
        self.ended: list[int] = []  # deliveries that will not reach the person
        self.paused_until: dt.datetime | None = None

    def _update(self, d: Claimed, row: dict[str, Any]) -> None:
        self.updates.append(row)
        state = row["state"]
        outcome = "retrying" if state is DeliveryState.QUEUED else str(state)
        self.summary.outcomes[(d.channel.value, outcome)] += 1

    def hold(self, item: Held) -> None:
        d = item.delivery
        self._update(
            d,
            _row(
                d,
                self.now,
                state=item.state,
                reason=item.reason,
                due_at=item.until,
                not_before=item.until,
                attempts=d.attempts - 1,
            ),
        )
        if item.state is DeliveryState.SUPPRESSED and item.reason != WithdrawalReason.CHAIN_STOPPED:
            self.ended.append(d.id)
        deferred = item.state is DeliveryState.DEFERRED
        kind = EventType.DELIVERY_DEFERRED if deferred else EventType.DELIVERY_REFUSED
        extra = {"until": item.until.isoformat()} if item.until else None
        self.events.append(
            _event(d, item.topic_key, self.now, kind, reason=item.reason, extra=extra)
        )

    def sent(self, result: Result, receipt: Receipt) -> None:
        lead, now = result.delivery, self.now
        if lead.channel in REPORTED and receipt.captured is None and receipt.provider_id:
            self.reported.append(receipt.provider_id)
        extra = {
            "provider": result.provider,
            "provider_id": receipt.provider_id,
            **(receipt.detail or {}),
            **_digest(result),
        }
        for d in result.deliveries:
            self.summary.sent += 1
            self._update(
                d,
                _row(
                    d,
                    now,
                    state=DeliveryState.SENT,
                    provider=receipt.provider or result.provider,
                    provider_id=receipt.provider_id,
                    sent_at=now,
                ),
            )
            event = _event(
                d,
                result.topic_key,
                now,
                EventType.DELIVERY_SENT,
                extra=extra | {"attempt": d.attempts},
            )
            self.events.append(event)
        if receipt.captured is not None:
            message = receipt.captured
            self.captures.append(
                {
                    "delivery_id": lead.id,
                    "channel": lead.channel,
                    "to": message.to,
                    "subject": message.subject,
                    "text": message.text,
                    "html": message.html,
                    "body": message.body,
                    "created_at": now,
                }
            )

    def failed(self, result: Result, error: DeliveryError) -> None:
        """One answer for the message, recorded on each of its deliveries (a digest's items
        retry together, at the same moment, so they stay one message)."""
        lead, now = result.delivery, self.now
        extra: dict[str, Any] = {
            "provider": result.provider,
            "error": error.message,
            "code": error.code,
            **_digest(result),
        }
        columns: dict[str, Any] = {
            "error": error.message[:2000],
            "error_code": error.code,
            "provider": result.provider,
        }
        ambiguous = isinstance(error, AmbiguousDeliveryError)
        retry = isinstance(error, RetryableDeliveryError) or (
            ambiguous and lead.channel in RESENDABLE
        )
        if self.paused_until is not None and getattr(error, "unavailable", False):
            self.retry(result, self.paused_until, spent=False, extra=extra, columns=columns)
        elif retry and lead.attempts < self.max_attempts:
            delay = backoff(
                lead.attempts, getattr(error, "retry_after", None), first=self.first_retry
            )
            at = now + dt.timedelta(seconds=delay)
            self.retry(result, at, ambiguous=ambiguous, extra=extra, columns=columns)
        else:
            self.end(result, error, ambiguous=ambiguous, retry=retry, extra=extra, columns=columns)

    def retry(
        self,
        result: Result,
        at: dt.datetime,
        *,
        extra: dict[str, Any],
        columns: dict[str, Any],
        ambiguous: bool = False,
        spent: bool = True,
    ) -> None:
        """Back to `queued` until `at`; a paused channel's wait does not spend the attempt."""
        kind = EventType.DELIVERY_UNKNOWN if ambiguous else EventType.DELIVERY_RETRYING
        more: dict[str, Any] = {"retry_at": at.isoformat()}
        if not spent:
            more["channel_paused"] = True
        for d in result.deliveries:
            self.summary.retrying += 1
            self._update(
                d,
                _row(
                    d,
                    self.now,
                    state=DeliveryState.QUEUED,
                    due_at=at,
                    not_before=at,
                    reason=d.reason if d.reason == DeferralReason.DIGEST else None,
                    ambiguous=d.ambiguous or ambiguous,
                    attempts=d.attempts if spent else d.attempts - 1,
                    **columns,
                ),
            )
            event = _event(
                d, result.topic_key, self.now, kind, extra=extra | more | {"attempt": d.attempts}
            )
            self.events.append(event)

    def end(
        self,
        result: Result,
        error: DeliveryError,
        *,
        ambiguous: bool,
        retry: bool,
        extra: dict[str, Any],
        columns: dict[str, Any],
    ) -> None:
        """A final outcome: failed, bounced, given up, or unknown."""
        now = self.now
        state, kind = DeliveryState.FAILED, EventType.DELIVERY_FAILED
        reason: FailureReason | SuppressionReason = FailureReason.REJECTED
        if ambiguous and not retry:
            state, kind = DeliveryState.UNKNOWN, EventType.DELIVERY_UNKNOWN
            reason = FailureReason.NO_ANSWER
        elif retry:
            reason = FailureReason.GAVE_UP
            self.summary.gave_up.extend(d.id for d in result.deliveries)
        elif isinstance(error, PermanentDeliveryError) and error.suppress is not None:
            reason = error.suppress
            if error.suppress is SuppressionReason.HARD_BOUNCE:
                state = DeliveryState.BOUNCED
            self.suppress(result, error.suppress, error.code)
        for d in result.deliveries:
            self.summary.failed += 1
            row = _row(d, now, state=state, reason=reason, ambiguous=d.ambiguous or ambiguous)
            self._update(d, row | columns)
            more = {"attempt": d.attempts}
            self.events.append(
                _event(d, result.topic_key, now, kind, reason=reason, extra=extra | more)
            )
            if state is not DeliveryState.UNKNOWN:
                self.ended.append(d.id)

    def suppress(self, result: Result, reason: SuppressionReason, code: str | None) -> None:
        d = result.delivery
        if not d.address:
            return
        self.suppressions.append(
            {
                "channel": d.channel,
                "address": d.address,
                "address_hash": self.hasher(d.channel, d.address),
                "reason": reason,
                "source": result.provider,
                "actor": f"delivery:{d.id}",
                "note": None,
                "created_at": self.now,
                "expires_at": None,
            }
        )
        self.events.append(
            _event(
                d,
                result.topic_key,
                self.now,
                EventType.SUPPRESSION_ADDED,
                reason=reason,
                extra={"code": code},
            )
        )

    def flush(self, session: Session) -> None:
        if self.updates:
            # Core executemany by primary key: every row carries the same columns, so one
            # statement serves the batch (the ORM's bulk update costs several times more).
            session.execute(_UPDATE, self.updates)
        timeline.record_many(session, self.events)
        if self.captures:
            session.execute(insert(Capture), self.captures)
        if self.suppressions:
            session.execute(insert_ignoring_duplicates(session, Suppression), self.suppressions)
        provider_status.apply_early(session, self.reported, hasher=self.hasher)
        if self.ended:
            escalation.advance_after(session, self.ended, now=self.now)
        if self.summary.gave_up:
            session.add(
                DeadLetter(
                    actor=DELIVER,  # replayed through the same actor
                    args=self.summary.gave_up,
                    error=f"gave up after {self.max_attempts} attempts",
                    failures=self.max_attempts,
                    created_at=self.now,
                )
            )


_TABLE = Base.metadata.tables[Delivery.__tablename__]
_COLUMNS = (
    "state",
    "reason",
    "due_at",
    "not_before",
    "attempts",
    "ambiguous",
    "provider",
    "provider_id",
    "sent_at",
    "error",
    "error_code",
    "updated_at",
)
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values({name: bindparam(name) for name in _COLUMNS})
)


def _row(d: Claimed, now: dt.datetime, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "row_id": d.id,
        "updated_at": now,
        "due_at": None,
        "not_before": None,
        "reason": None,
        "error": None,
        "error_code": None,
        "attempts": d.attempts,
        "ambiguous": d.ambiguous,
        "provider": None,
        "provider_id": None,
        "sent_at": None,
    }
    return row | values


def _digest(result: Result) -> dict[str, Any]:
    """On each item of a digest: which message carried it, and with how many others."""
    if not result.riders:
        return {}
    return {"digest": {"lead_delivery_id": result.delivery.id, "items": len(result.deliveries)}}


def _event(
    d: Claimed,
    topic_key: str,
    now: dt.datetime,
    kind: EventType,
    *,
    reason: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    changes = {"delivery_id": d.id, "notification_id": d.notification_id, **(extra or {})}
    return timeline.event_row(
        contact_id=d.contact_id,
        type=kind,
        actor=DISPATCHER,
        at=now,
        changes=changes,
        topic_key=topic_key,
        channel=d.channel,
        reason=reason,
    )
