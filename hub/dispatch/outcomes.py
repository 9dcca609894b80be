"""Record what became of each claimed delivery, for the rows this worker still holds.

The dispatcher hands in the providers' answers (`Result`) and the deliveries the re-check at
send time stopped (`Held`); `retry.decide` says what each answer means, `outcome_writer`
writes it all in one transaction. A transient failure goes back to `queued` with a backoff
(the sweeper re-enqueues it when due); a permanent one is final and, when the provider says
the address itself is dead (a hard bounce, a carrier opt-out), the address is suppressed in
the same transaction, so the next send already skips it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.channels.base import DeliveryError, Receipt
from hub.db.models import Delivery
from hub.dispatch import retry
from hub.dispatch.claim import Claimed
from hub.dispatch.outcome_writer import Message, OutcomeWriter, Recorded
from hub.domain import DeliveryState
from hub.services.hashing import AddressHasher

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
    """A claimed delivery the re-check at send time stopped: refused or deferred since fan-out.

    `reason`: a `WithdrawalReason`, a `DeferralReason`, or a refusal as `delivery_reason`
    builds it (`suppressed:sms_stop`)."""

    delivery: Claimed
    topic_key: str
    state: DeliveryState
    reason: str
    until: dt.datetime | None = None


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
    writer = OutcomeWriter(now=now, max_attempts=max_attempts, hasher=hasher)
    for item in held:
        writer.hold(
            item.delivery,
            topic_key=item.topic_key,
            state=item.state,
            reason=item.reason,
            until=item.until,
        )
    for result in results:
        message = Message(result.deliveries, result.topic_key, result.provider, _digest(result))
        answer = result.outcome
        if isinstance(answer, Receipt):
            writer.sent(message, answer)
            continue
        decision = retry.decide(
            answer,
            channel=result.delivery.channel,
            attempts=result.delivery.attempts,
            max_attempts=max_attempts,
            now=now,
            first_retry=first_retry,
            paused_until=paused_until,
        )
        writer.failed(message, answer, decision)
    writer.flush(session)
    return writer.summary


def _still_held(session: Session, claimed: Sequence[Claimed]) -> set[int]:
    """Ids of the rows still `sending` under the attempt this worker claimed, locked until
    the transaction ends (SQLite's write lock is already held since BEGIN IMMEDIATE)."""
    attempts = {d.id: d.attempts for d in claimed}
    query = select(Delivery.id, Delivery.attempts).where(
        Delivery.id.in_(list(attempts)), Delivery.state == DeliveryState.SENDING
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


def _digest(result: Result) -> dict[str, Any]:
    """On each item of a digest: which message carried it, and with how many others."""
    if not result.riders:
        return {}
    return {"digest": {"lead_delivery_id": result.delivery.id, "items": len(result.deliveries)}}
