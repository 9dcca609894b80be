"""Tell employees what happened to the clients they look after (issue 21).

`forward` takes the client events waiting in the outbox (`hub.events.client_outbox`), finds
the employees subscribed to each one's client topic whose scope covers that client — `mine`:
its owner; `teams`: also the members of its teams; `all`: an employee whose staff account
may see every client — and creates one notification per event for them, naming the client
and linking to their profile. It deletes the events in the same transaction, so each is told
once: a crash before the commit leaves them to the next sweep, and a second sweeper that
took the same rows finds them gone (`Raced`) and rolls back.

The notifications are ordinary ones of the topic: each employee's channels, quiet hours,
digest and explain apply as to any other.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from hub.db.models import (
    ClientEventMessage,
    Contact,
    StaffUser,
    Subscription,
    TeamMember,
    Topic,
)
from hub.domain import ClientScope, ClientTopic, ContactKind, EventType, SubscriptionStatus
from hub.services import client_topics, notifications, timeline_words
from hub.services.subscriptions import SEES_ALL

BATCH = 200
SOURCE = "clients"  # the notifications' source: what a staff member filters by

_HEADLINES: dict[str, str] = {
    ClientTopic.REPLIES: "replied",
    ClientTopic.REFUSALS: "opted out",
    ClientTopic.FAILURES: "was not reached",
    ClientTopic.PREFERENCES: "changed their preferences",
    ClientTopic.CLICKS: "followed a link",
}
_SAID_WHY = "said why they left"

# What the employee gets, on whichever channel they chose; `data` is made by `_data`.
_LINE = "{{ data.client.name }} ({{ data.client.external_id }}): {{ data.what }}"
VARIANTS: dict[str, Any] = {
    "": {
        "email_subject": "{{ data.client.name }} {{ data.headline }}",
        "email_text": _LINE + "\n\nTheir profile: {{ data.client.profile }}\n",
        "email_html": (
            "<p><strong>{{ data.client.name }}</strong> ({{ data.client.external_id }}): "
            '{{ data.what }}</p><p><a href="{{ data.client.profile }}">Their profile</a></p>'
        ),
        "sms_body": "{{ data.client.name }}: {{ data.what }} {{ data.client.profile }}",
        "voice_say": "{{ data.client.name }} {{ data.headline }}. {{ data.what }}",
        "webhook_json": {
            "topic": "{{ topic.key }}",
            "client": "{{ data.client.external_id }}",
            "name": "{{ data.client.name }}",
            "what": "{{ data.what }}",
            "profile": "{{ data.client.profile }}",
        },
    }
}


class Raced(Exception):
    """Another sweeper took some of these events first: roll back and let it tell them."""


@dataclass(frozen=True, slots=True)
class Watcher:
    """An employee subscribed to a client topic, and whose clients they hear of."""

    contact_id: int
    scope: ClientScope
    teams: frozenset[int]
    sees_all: bool

    def hears_of(self, client: Contact, teams: frozenset[int]) -> bool:
        if self.contact_id == client.id:
            return False
        if self.scope is ClientScope.ALL and self.sees_all:
            return True
        if client.owner_id == self.contact_id:
            return True
        return self.scope is ClientScope.TEAMS and not self.teams.isdisjoint(teams)


@dataclass(frozen=True, slots=True)
class Forwarded:
    taken: int  # events taken from the outbox
    notifications: list[int]  # made of them (none for an event nobody hears of)


def forward(
    session: Session, *, now: dt.datetime, public_url: str, limit: int = BATCH
) -> Forwarded:
    """Turn up to `limit` waiting client events into notifications (the caller commits, then
    enqueues their fan-out)."""
    query = select(ClientEventMessage).order_by(ClientEventMessage.id).limit(limit)
    waiting = list(session.scalars(query.with_for_update(skip_locked=True)))
    if not waiting:
        return Forwarded(0, [])
    ids = [message.id for message in waiting]
    gone = session.execute(delete(ClientEventMessage).where(ClientEventMessage.id.in_(ids)))
    taken: int = gone.rowcount  # type: ignore[attr-defined]
    if taken != len(ids):
        raise Raced(f"{len(ids) - taken} client events were taken by another sweeper")
    watchers = _watchers(session)
    clients = _clients(session, {message.contact_id for message in waiting})
    topics = {t.key: t for t in session.scalars(select(Topic).where(Topic.key.in_(watchers)))}
    names = {row.key: row.name for row in session.execute(select(Topic.key, Topic.name))}
    made = []
    for message in waiting:
        found = clients.get(message.contact_id)
        topic = topics.get(message.topic_key)
        if found is None or topic is None:
            continue
        client, teams = found
        recipients = [w.contact_id for w in watchers[topic.key] if w.hears_of(client, teams)]
        if not recipients:
            continue
        made.append(
            notifications.create(
                session,
                topic_id=topic.id,
                template_key=None,
                variants=VARIANTS,
                data=_data(message, client, public_url=public_url, now=now, topics=names),
                source=SOURCE,
                now=now,
                recipients=sorted(recipients),
                about=client.id,
            )
        )
    return Forwarded(len(waiting), made)


def _watchers(session: Session) -> dict[str, list[Watcher]]:
    """Every employee subscribed to a client topic, by topic key."""
    rows = session.execute(
        select(Subscription.contact_id, Subscription.scope, Topic.key)
        .join(Topic, Topic.id == Subscription.topic_id)
        .join(Contact, Contact.id == Subscription.contact_id)
        .where(
            Topic.key.in_(client_topics.KEYS),
            Subscription.status == SubscriptionStatus.SUBSCRIBED,
            Contact.kind == ContactKind.EMPLOYEE,
        )
    ).all()
    employees = {row.contact_id for row in rows}
    teams = _teams(session, employees)
    seeing = set(
        session.scalars(
            select(StaffUser.contact_id).where(
                StaffUser.contact_id.in_(employees),
                StaffUser.role.in_(SEES_ALL),
                StaffUser.disabled.is_(False),
            )
        )
    )
    found: dict[str, list[Watcher]] = defaultdict(list)
    for row in rows:
        scope = ClientScope(row.scope) if row.scope else ClientScope.MINE
        watcher = Watcher(row.contact_id, scope, teams[row.contact_id], row.contact_id in seeing)
        found[row.key].append(watcher)
    return found


def _clients(session: Session, ids: set[int]) -> dict[int, tuple[Contact, frozenset[int]]]:
    found = session.scalars(
        select(Contact).where(Contact.id.in_(ids), Contact.kind == ContactKind.CLIENT)
    )
    clients = {client.id: client for client in found}
    teams = _teams(session, set(clients))
    return {i: (client, teams[i]) for i, client in clients.items()}


def _teams(session: Session, contact_ids: Iterable[int]) -> defaultdict[int, frozenset[int]]:
    ids = list(contact_ids)
    found: defaultdict[int, frozenset[int]] = defaultdict(frozenset)
    if not ids:
        return found
    rows = session.execute(
        select(TeamMember.contact_id, TeamMember.team_id).where(TeamMember.contact_id.in_(ids))
    )
    for row in rows:
        found[row.contact_id] = found[row.contact_id] | {row.team_id}
    return found


def _data(
    message: ClientEventMessage,
    client: Contact,
    *,
    public_url: str,
    now: dt.datetime,
    topics: Mapping[str, str],
) -> dict[str, Any]:
    event = message.event
    words = timeline_words.Event(
        kind=event["type"],
        channel=event.get("channel"),
        topic_key=event.get("topic_key"),
        reason=event.get("reason"),
        changes=event.get("changes"),
        actor_kind=event.get("actor_kind") or "system",
        actor=event.get("actor") or "",
        source=event.get("source") or "",
    )
    known = timeline_words.Known(now=now, zone=client.timezone, topics=topics)
    said = timeline_words.sentence(words, known) or timeline_words.fallback(words)
    profile = f"{public_url.rstrip('/')}/console/contacts/{quote(client.external_id, safe='')}"
    headline = (
        _SAID_WHY if event["type"] == EventType.REFUSAL_REASON else _HEADLINES[message.topic_key]
    )
    return {
        "client": {
            "name": client.name or client.external_id,
            "external_id": client.external_id,
            "profile": profile,
        },
        "headline": headline,
        "what": timeline_words.plain(said),
        "event": event["type"],
        "reason": event.get("reason"),
        "at": event.get("occurred_at"),
    }
