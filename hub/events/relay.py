"""Send outbox rows to their endpoints: claim, POST (signed per endpoint), record, retry.

Like deliveries, a message is claimed by a state transition before the request leaves, so
a duplicate queue job sends nothing; a worker that dies mid-request leaves the claim to run
out, and the sweeper hands the message out again under the same `webhook-id`, by which
receivers drop what they already have. Retries follow Standard Webhooks' schedule.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from hub.db.models import EventAttempt, EventEndpoint, EventMessage
from hub.domain import EventMessageState
from hub.events import outbox

log = logging.getLogger("hub.events")

# Endpoint faults no retry can mend: the endpoint is disabled until someone fixes it.
DISABLING = {
    "410": "answered 410 Gone",
    "forbidden_address": "is not a public address",
    "invalid_url": "has a URL no request can be sent to",  # saved before URLs were checked
}
ERROR_CHARS = 500


def webhook_id(message_id: int) -> str:
    """Stable across attempts, so the receiver can drop a duplicate."""
    return f"evt_{message_id}"


@dataclass(frozen=True, slots=True)
class Claimed:
    id: int
    endpoint_id: int
    url: str
    secret: str
    payload: dict[str, object]
    attempts: int  # including this one

    @property
    def webhook_id(self) -> str:
        return webhook_id(self.id)


@dataclass(frozen=True, slots=True)
class Answer:
    """What one attempt got: an HTTP status, or none and an error (or both)."""

    status: int | None
    error: str | None
    code: str | None  # the channel's error code: "410", "timeout", "forbidden_address"...
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass
class Tally:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    disabled: set[int] = field(default_factory=set)


def due(
    session: Session, *, now: dt.datetime, queue_lease: dt.timedelta, limit: int = 5000
) -> list[int]:
    """Messages to hand to the queue now: pending ones come due, and claims that ran out.

    Moves each one's `due_at` a queue lease ahead, so the next sweep leaves it alone while
    the job waits in the queue. The caller commits, then enqueues.
    """
    query = (
        select(EventMessage.id)
        .join(EventEndpoint, EventEndpoint.id == EventMessage.endpoint_id)
        .where(
            EventMessage.state.in_((EventMessageState.PENDING, EventMessageState.SENDING)),
            EventMessage.due_at <= now,
            EventEndpoint.enabled,
        )
        .order_by(EventMessage.due_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(of=EventMessage, skip_locked=True)
    ids = list(session.scalars(query))
    if ids:
        session.execute(
            update(EventMessage)
            .where(EventMessage.id.in_(ids))
            .values(state=EventMessageState.PENDING, due_at=now + queue_lease)
            .execution_options(synchronize_session=False)
        )
    return ids


def claim(
    session: Session, ids: Sequence[int], *, now: dt.datetime, send_lease: dt.timedelta
) -> list[Claimed]:
    if not ids:
        return []
    claimed = session.execute(
        update(EventMessage)
        .where(EventMessage.id.in_(ids), EventMessage.state == EventMessageState.PENDING)
        .values(
            state=EventMessageState.SENDING,
            attempts=EventMessage.attempts + 1,
            due_at=now + send_lease,
        )
        .returning(EventMessage.id)
        .execution_options(synchronize_session=False)
    ).scalars()
    rows = session.execute(
        select(
            EventMessage.id,
            EventMessage.endpoint_id,
            EventMessage.payload,
            EventMessage.attempts,
            EventEndpoint.url,
            EventEndpoint.secret,
        )
        .join(EventEndpoint, EventEndpoint.id == EventMessage.endpoint_id)
        .where(EventMessage.id.in_(list(claimed)))
        .order_by(EventMessage.id)
    ).all()
    return [
        Claimed(
            id=row.id,
            endpoint_id=row.endpoint_id,
            url=row.url,
            secret=row.secret,
            payload=row.payload,
            attempts=row.attempts,
        )
        for row in rows
    ]


def record(
    session: Session,
    results: Sequence[tuple[Claimed, Answer]],
    *,
    now: dt.datetime,
    schedule: Sequence[float],
) -> Tally:
    """Write each attempt to the log and move its message on: delivered, retry, or failed."""
    tally = Tally()
    updates: list[dict[str, object]] = []
    attempts: list[dict[str, object]] = []
    disable: dict[int, str] = {}
    for message, answer in results:
        attempts.append(
            {
                "message_id": message.id,
                "attempted_at": now,
                "status_code": answer.status,
                "error": answer.error,
                "duration_ms": answer.duration_ms,
            }
        )
        change: dict[str, object] = {
            "id": message.id,
            "last_status": answer.status,
            "last_error": answer.error,
        }
        if answer.ok:
            change |= {"state": EventMessageState.DELIVERED, "due_at": None, "delivered_at": now}
            tally.delivered += 1
        elif answer.code in DISABLING:
            disable[message.endpoint_id] = f"{DISABLING[answer.code]} at {now:%Y-%m-%d %H:%M}Z"
            change |= {"state": EventMessageState.PENDING, "due_at": now}  # waits, re-enabled
            tally.retrying += 1
        elif message.attempts <= len(schedule):
            delay = schedule[message.attempts - 1] * random.uniform(0.9, 1.1)  # noqa: S311
            change |= {
                "state": EventMessageState.PENDING,
                "due_at": now + dt.timedelta(seconds=delay),
            }
            tally.retrying += 1
        else:
            change |= {"state": EventMessageState.FAILED, "due_at": None}
            tally.failed += 1
        updates.append(change)
    if updates:
        session.execute(update(EventMessage), updates)
        session.execute(insert(EventAttempt), attempts)
    for endpoint_id, reason in disable.items():
        log.warning("event endpoint %s disabled: it %s", endpoint_id, reason)
        session.execute(
            update(EventEndpoint)
            .where(EventEndpoint.id == endpoint_id, EventEndpoint.enabled)
            .values(enabled=False, disabled_reason=reason, updated_at=now)
        )
    if disable:
        outbox.DIRECTORY.forget(session)
        tally.disabled.update(disable)
    return tally
