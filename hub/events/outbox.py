"""The outbox: the timeline events that registered endpoints asked for.

Written by `timeline.record_many` in the event's own transaction, so an event is relayed
exactly when it happened: a rolled-back unsubscribe sends nothing, a committed one is never
forgotten, whatever crashes after. The relay (`hub.events.relay`) sends the rows later.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from hub.db.base import Base, utcnow
from hub.db.models import Contact, EventEndpoint, EventMessage
from hub.domain import EventMessageState
from hub.events.per_engine import PerEngine

# A new or changed endpoint is seen by other processes within this many seconds; the
# process that changed it sees it at once (`forget`).
DIRECTORY_TTL = 5.0
_MESSAGES = Base.metadata.tables[EventMessage.__tablename__]


@dataclass(frozen=True, slots=True)
class Listener:
    endpoint_id: int
    event_types: frozenset[str]


def _listeners(session: Session) -> tuple[Listener, ...]:
    rows = session.execute(
        select(EventEndpoint.id, EventEndpoint.event_types).where(EventEndpoint.enabled)
    ).all()
    return tuple(Listener(row.id, frozenset(row.event_types)) for row in rows)


# The enabled endpoints of each database: with none registered, the timeline pays one
# dictionary look-up per write.
DIRECTORY = PerEngine(_listeners, DIRECTORY_TTL)


def emit(session: Session, rows: Sequence[Mapping[str, Any]]) -> int:
    """Queue each event row (as `timeline.event_row` builds it) for every endpoint that
    listens to its type; returns how many messages were queued."""
    listeners = DIRECTORY.get(session)
    if not listeners or not rows:
        return 0
    wanted = [
        (row, [ear.endpoint_id for ear in listeners if row["type"] in ear.event_types])
        for row in rows
    ]
    wanted = [(row, endpoints) for row, endpoints in wanted if endpoints]
    if not wanted:
        return 0
    contact_ids = {row["contact_id"] for row, _ in wanted}
    found = session.execute(
        select(Contact.id, Contact.external_id).where(Contact.id.in_(contact_ids))
    )
    external_ids = {row.id: row.external_id for row in found}
    now = utcnow()
    messages = [
        {
            "endpoint_id": endpoint_id,
            "contact_id": row["contact_id"],
            "event_type": str(row["type"]),
            "payload": payload(row, external_ids.get(row["contact_id"])),
            "state": EventMessageState.PENDING,
            "attempts": 0,
            "due_at": now,
            "created_at": now,
        }
        for row, endpoints in wanted
        for endpoint_id in endpoints
    ]
    session.execute(insert(_MESSAGES), messages)
    return len(messages)


def payload(row: Mapping[str, Any], external_id: str | None) -> dict[str, Any]:
    """The JSON an endpoint receives: Standard Webhooks' `type`, `timestamp` and `data`.

    The person is named by the caller's own id; IP and user agent stay in Hub.
    """
    channel = row.get("channel")
    return {
        "type": str(row["type"]),
        "timestamp": row["occurred_at"].isoformat().replace("+00:00", "Z"),
        "data": {
            "contact": external_id,
            "topic": row.get("topic_key"),
            "channel": str(channel) if channel is not None else None,
            "reason": row.get("reason"),
            "actor": {
                "kind": str(row["actor_kind"]),
                "name": row["actor"],
                "source": row["source"],
            },
            "details": row.get("changes"),
        },
    }
