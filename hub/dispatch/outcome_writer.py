"""Write one batch's outcomes: delivery rows, timeline, captures, suppressions, and what follows.

Decisions come made (`retry.decide`; holds from the re-check at send time); this module only
turns them into one bulk UPDATE of rows, one bulk INSERT of events, the captured messages,
the suppressed addresses, the escalation steps brought forward and the dead letter of the
deliveries that gave up, in the caller's transaction, so the next send already sees them.
A later escalation step's events say why it went or stopped (`changes.escalation`).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, insert, update
from sqlalchemy.orm import Session

from hub.channels.base import DeliveryError, Receipt
from hub.db.base import Base
from hub.db.models import Capture, DeadLetter, Delivery, Suppression
from hub.db.upsert import insert_ignoring_duplicates
from hub.dispatch import escalation, provider_status
from hub.dispatch.claim import Claimed
from hub.dispatch.fanout import DISPATCHER
from hub.dispatch.retry import Decision, Verdict
from hub.domain import (
    Channel,
    DeferralReason,
    DeliveryState,
    EventType,
    SuppressionReason,
    WithdrawalReason,
)
from hub.queue import DELIVER
from hub.services import timeline
from hub.services.hashing import AddressHasher

REPORTED = frozenset({Channel.SMS, Channel.VOICE})  # their providers call back with statuses


@dataclass
class Recorded:
    sent: int = 0
    retrying: int = 0
    failed: int = 0
    gave_up: list[int] = field(default_factory=list)
    # (channel, state it was left in) -> deliveries: what the metrics count
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)


@dataclass(frozen=True, slots=True)
class Message:
    """One message a provider answered for: its deliveries (the lead first; a digest's items
    go together) and, on a digest, which message carried each item (kept on every event)."""

    deliveries: tuple[Claimed, ...]
    topic_key: str
    provider: str
    digest: dict[str, Any]


class OutcomeWriter:
    def __init__(self, *, now: dt.datetime, max_attempts: int, hasher: AddressHasher) -> None:
        self.now = now
        self.max_attempts = max_attempts
        self.hasher = hasher
        self.summary = Recorded()
        self.updates: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.captures: list[dict[str, Any]] = []
        self.suppressions: list[dict[str, Any]] = []
        self.reported: list[str] = []  # SIDs whose status callbacks may have come first
        self.ended: list[int] = []  # deliveries that will not reach the person

    def _update(self, d: Claimed, row: dict[str, Any]) -> None:
        self.updates.append(row)
        state = row["state"]
        outcome = "retrying" if state is DeliveryState.QUEUED else str(state)
        self.summary.outcomes[(d.channel.value, outcome)] += 1

    def hold(
        self,
        d: Claimed,
        *,
        topic_key: str,
        state: DeliveryState,
        reason: str,
        until: dt.datetime | None,
    ) -> None:
        """Refused or deferred at send time: back to that state, the attempt not spent."""
        row = _row(
            d,
            self.now,
            state=state,
            reason=reason,
            due_at=until,
            not_before=until,
            attempts=d.attempts - 1,
        )
        self._update(d, row)
        if state is DeliveryState.SUPPRESSED and reason != WithdrawalReason.CHAIN_STOPPED:
            self.ended.append(d.id)
        deferred = state is DeliveryState.DEFERRED
        kind = EventType.DELIVERY_DEFERRED if deferred else EventType.DELIVERY_REFUSED
        extra = {"until": until.isoformat()} if until else None
        self.events.append(_event(d, topic_key, self.now, kind, reason=reason, extra=extra))

    def sent(self, message: Message, receipt: Receipt) -> None:
        lead, now = message.deliveries[0], self.now
        if lead.channel in REPORTED and receipt.captured is None and receipt.provider_id:
            self.reported.append(receipt.provider_id)
        extra = {
            "provider": message.provider,
            "provider_id": receipt.provider_id,
            **(receipt.detail or {}),
            **message.digest,
        }
        for d in message.deliveries:
            self.summary.sent += 1
            row = _row(
                d,
                now,
                state=DeliveryState.SENT,
                provider=receipt.provider or message.provider,
                provider_id=receipt.provider_id,
                sent_at=now,
            )
            self._update(d, row)
            more = {"attempt": d.attempts}
            kind = EventType.DELIVERY_SENT
            self.events.append(_event(d, message.topic_key, now, kind, extra=extra | more))
        if receipt.captured is not None:
            kept = receipt.captured
            self.captures.append(
                {
                    "delivery_id": lead.id,
                    "channel": lead.channel,
                    "to": kept.to,
                    "subject": kept.subject,
                    "text": kept.text,
                    "html": kept.html,
                    "body": kept.body,
                    "created_at": now,
                }
            )

    def failed(self, message: Message, error: DeliveryError, decision: Decision) -> None:
        """One decision for the message, recorded on each of its deliveries (a digest's items
        retry together, at the same moment, so they stay one message)."""
        extra: dict[str, Any] = {
            "provider": message.provider,
            "error": error.message,
            "code": error.code,
            **message.digest,
        }
        columns: dict[str, Any] = {
            "error": error.message[:2000],
            "error_code": error.code,
            "provider": message.provider,
        }
        if decision.at is not None:
            self._retry(message, decision, extra=extra, columns=columns)
            return
        if decision.verdict is Verdict.GIVE_UP:
            self.summary.gave_up.extend(d.id for d in message.deliveries)
        if decision.suppress is not None:
            self._suppress(message, decision.suppress, error.code)
        unknown = decision.state is DeliveryState.UNKNOWN
        kind = EventType.DELIVERY_UNKNOWN if unknown else EventType.DELIVERY_FAILED
        for d in message.deliveries:
            self.summary.failed += 1
            ambiguous = d.ambiguous or decision.ambiguous
            row = _row(d, self.now, state=decision.state, reason=decision.reason)
            self._update(d, row | {"ambiguous": ambiguous} | columns)
            more = {"attempt": d.attempts}
            reason = decision.reason
            self.events.append(
                _event(d, message.topic_key, self.now, kind, reason=reason, extra=extra | more)
            )
            if decision.ended:
                self.ended.append(d.id)

    def _retry(
        self,
        message: Message,
        decision: Decision,
        *,
        extra: dict[str, Any],
        columns: dict[str, Any],
    ) -> None:
        """Back to `queued` until the decision's time; a paused channel's wait does not
        spend the attempt."""
        at = decision.at
        assert at is not None
        kind = EventType.DELIVERY_UNKNOWN if decision.ambiguous else EventType.DELIVERY_RETRYING
        more: dict[str, Any] = {"retry_at": at.isoformat()}
        if not decision.spent:
            more["channel_paused"] = True
        for d in message.deliveries:
            self.summary.retrying += 1
            row = _row(
                d,
                self.now,
                state=DeliveryState.QUEUED,
                due_at=at,
                not_before=at,
                # a digest's item stays one: its next attempt is the digest's again
                reason=d.reason if d.reason == DeferralReason.DIGEST else None,
                ambiguous=d.ambiguous or decision.ambiguous,
                attempts=d.attempts if decision.spent else d.attempts - 1,
                **columns,
            )
            self._update(d, row)
            event_extra = extra | more | {"attempt": d.attempts}
            self.events.append(_event(d, message.topic_key, self.now, kind, extra=event_extra))

    def _suppress(self, message: Message, reason: SuppressionReason, code: str | None) -> None:
        d = message.deliveries[0]
        if not d.address:
            return
        self.suppressions.append(
            {
                "channel": d.channel,
                "address": d.address,
                "address_hash": self.hasher(d.channel, d.address),
                "reason": reason,
                "source": message.provider,
                "actor": f"delivery:{d.id}",
                "note": None,
                "created_at": self.now,
                "expires_at": None,
            }
        )
        kind = EventType.SUPPRESSION_ADDED
        self.events.append(
            _event(d, message.topic_key, self.now, kind, reason=reason, extra={"code": code})
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
# What an outcome clears unless it sets it: every row of a batch carries every column.
_CLEARED: dict[str, Any] = dict.fromkeys(
    ("due_at", "not_before", "reason", "error", "error_code", "provider", "provider_id", "sent_at")
)
_COLUMNS = (*_CLEARED, "state", "attempts", "ambiguous", "updated_at")
_UPDATE = (
    update(_TABLE)
    .where(_TABLE.c.id == bindparam("row_id"))
    .values({name: bindparam(name) for name in _COLUMNS})
)


def _row(d: Claimed, now: dt.datetime, **values: Any) -> dict[str, Any]:
    row = {"row_id": d.id, "updated_at": now, "attempts": d.attempts, "ambiguous": d.ambiguous}
    return _CLEARED | row | values


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
    if d.escalation is not None and kind is not EventType.SUPPRESSION_ADDED:
        # A later step of a chain: why it went (nothing earlier did what its `unless` asks)
        # or stopped (which earlier delivery did, and when), for the timeline and explain.
        changes["escalation"] = d.escalation.as_changes()
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
