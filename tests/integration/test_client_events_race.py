"""Four sweepers forward the same waiting client events at once (PostgreSQL's SKIP LOCKED,
SQLite's one writer): every event becomes exactly one notification, none is lost, and the
outbox ends empty."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from hub.db.base import utcnow
from hub.db.models import ClientEventMessage, Contact, Notification
from hub.domain import ActorKind, Channel, ClientScope, ClientTopic, ContactKind, EventType
from hub.runtime import Runtime
from hub.schemas.subscriptions import SubscriptionIn
from hub.services import client_events, subscriptions, timeline, topics
from hub.services.actor import Actor

ACTOR = Actor(ActorKind.SYSTEM, "test", "test")
EVENTS = 450  # more than two of forward's batches


def test_racing_sweepers_tell_each_event_once(runtime: Runtime) -> None:
    with runtime.sessions() as session, session.begin():
        boss = Contact(
            external_id="boss",
            kind=ContactKind.EMPLOYEE,
            email="boss@corp.example",
            timezone="UTC",
            attributes={},
        )
        session.add(boss)
        session.flush()
        clients = [
            Contact(
                external_id=f"c{i}",
                kind=ContactKind.CLIENT,
                timezone="UTC",
                attributes={},
                owner_id=boss.id,
            )
            for i in range(EVENTS)
        ]
        session.add_all(clients)
        session.flush()
        topic = topics.get(session, ClientTopic.FAILURES)
        wanted = SubscriptionIn(channels=[Channel.EMAIL], scope=ClientScope.MINE)
        subscriptions.put(session, boss, topic, wanted, ACTOR)
        rows = [
            timeline.event_row(
                contact_id=c.id, type=EventType.DELIVERY_FAILED, actor=ACTOR, reason="rejected"
            )
            for c in clients
        ]
        timeline.record_many(session, rows)
    with runtime.reads() as session:
        assert session.scalar(select(func.count()).select_from(ClientEventMessage)) == EVENTS

    raced: list[str] = []
    failed: list[BaseException] = []
    start = threading.Barrier(4)

    def sweeper() -> None:
        start.wait()
        try:
            while True:
                try:
                    with runtime.sessions() as session, session.begin():
                        done = client_events.forward(
                            session, now=utcnow(), public_url="https://hub.example.com"
                        )
                except client_events.Raced as exc:
                    raced.append(str(exc))
                    continue
                if done.taken == 0:
                    return
        except BaseException as exc:  # reported below, with the rest
            failed.append(exc)

    threads = [threading.Thread(target=sweeper) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert failed == []
    with runtime.reads() as session:
        assert session.scalar(select(func.count()).select_from(ClientEventMessage)) == 0
        told = session.scalars(
            select(Notification.data).where(Notification.source == client_events.SOURCE)
        ).all()
    clients_told = sorted(data["client"]["external_id"] for data in told)
    assert clients_told == sorted(f"c{i}" for i in range(EVENTS))  # each once, none lost
