"""What telling employees of their clients costs, on SQLite.

    .venv/bin/python bench/client_events.py [--rows 20000] [--events 5000] [--runs 3]

1. The timeline's hot path: `timeline.record_many` of delivery outcomes in batches of 500
   (nine in ten `delivery.sent`, one in ten `delivery.failed`, for clients), timed three ways
   in the same run: without the client outbox (the reference: `client_outbox.emit` switched
   off), with it while nobody subscribes to a client topic, and with an employee subscribed
   to `clients.failures` (the failures then wait in the outbox). Per row, best of `--runs`.
2. The sweep's side: `client_events.forward` turning `--events` waiting failures (clients owned
   by 50 employees, in 5 teams, each employee subscribed with scope `teams`) into
   notifications, in its batches of 200: events per second and CPU per event.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import delete, func, insert, select

from hub.db import migrate
from hub.db.base import utcnow
from hub.db.models import ClientEventMessage, Contact, Notification, Team, TeamMember
from hub.domain import ActorKind, Channel, ClientScope, ClientTopic, ContactKind, EventType
from hub.events import client_outbox
from hub.runtime import Runtime
from hub.schemas.subscriptions import SubscriptionIn
from hub.services import client_events, subscriptions, timeline, topics
from hub.services.actor import Actor
from hub.settings import Settings

ACTOR = Actor(ActorKind.SYSTEM, "bench", "bench")
BATCH = 500
EMPLOYEES, TEAMS = 50, 5


def seed(runtime: Runtime, clients: int) -> list[int]:
    now = utcnow()
    with runtime.sessions() as session, session.begin():
        teams = [Team(key=f"t{i}", name=f"Team {i}", created_at=now) for i in range(TEAMS)]
        session.add_all(teams)
        session.flush()
        employees = [_contact(f"e{i}", ContactKind.EMPLOYEE) for i in range(EMPLOYEES)]
        session.add_all(employees)
        session.flush()
        session.execute(
            insert(TeamMember),
            [
                {"team_id": teams[i % TEAMS].id, "contact_id": e.id, "added_at": now}
                for i, e in enumerate(employees)
            ],
        )
        people = [_contact(f"c{i}", ContactKind.CLIENT) for i in range(clients)]
        for i, person in enumerate(people):
            person.owner_id = employees[i % EMPLOYEES].id
        session.add_all(people)
        session.flush()
        session.execute(
            insert(TeamMember),
            [
                {"team_id": teams[i % TEAMS].id, "contact_id": c.id, "added_at": now}
                for i, c in enumerate(people)
            ],
        )
        return [c.id for c in people]


def _contact(external_id: str, kind: ContactKind) -> Contact:
    return Contact(
        external_id=external_id,
        kind=kind,
        name=external_id.upper(),
        email=f"{external_id}@example.com",
        timezone="UTC",
        attributes={},
    )


def rows(clients: list[int], count: int) -> list[dict[str, object]]:
    made = []
    for n in range(count):
        kind = EventType.DELIVERY_FAILED if n % 10 == 0 else EventType.DELIVERY_SENT
        made.append(
            timeline.event_row(
                contact_id=clients[n % len(clients)],
                type=kind,
                actor=ACTOR,
                changes={"delivery_id": n, "notification_id": 1},
                reason="rejected" if kind is EventType.DELIVERY_FAILED else None,
            )
        )
    return made


@contextlib.contextmanager
def no_client_outbox() -> Iterator[None]:
    kept = client_outbox.emit
    client_outbox.emit = lambda session, rows: 0
    try:
        yield
    finally:
        client_outbox.emit = kept


def time_writes(runtime: Runtime, all_rows: list[dict[str, object]], runs: int) -> float:
    """Best seconds per row over `runs` passes of record_many in batches."""
    best = float("inf")
    for _ in range(runs):
        began = time.perf_counter()
        for i in range(0, len(all_rows), BATCH):
            with runtime.sessions() as session, session.begin():
                timeline.record_many(session, all_rows[i : i + BATCH])
        best = min(best, (time.perf_counter() - began) / len(all_rows))
    return best


def subscribe_everyone(runtime: Runtime) -> None:
    with runtime.sessions() as session, session.begin():
        topic = topics.get(session, ClientTopic.FAILURES)
        staff = session.scalars(select(Contact).where(Contact.kind == ContactKind.EMPLOYEE))
        for employee in staff:
            data = SubscriptionIn(channels=[Channel.EMAIL], scope=ClientScope.TEAMS)
            subscriptions.put(session, employee, topic, data, ACTOR)


def waiting(runtime: Runtime) -> int:
    with runtime.reads() as session:
        return int(session.scalar(select(func.count()).select_from(ClientEventMessage)) or 0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--events", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{folder}/hub.db", secret_key="x" * 32)
        runtime = Runtime.build(settings)
        migrate.upgrade(runtime.engine)
        clients = seed(runtime, 10_000)
        outcomes = rows(clients, args.rows)
        with no_client_outbox():
            reference = time_writes(runtime, outcomes, args.runs)
        unheard = time_writes(runtime, outcomes, args.runs)
        subscribe_everyone(runtime)
        heard = time_writes(runtime, outcomes, args.runs)
        kept = waiting(runtime)
        print(f"timeline.record_many of {args.rows:,} delivery outcomes (1 in 10 failed), per row:")
        print(f"  reference, no client outbox:        {reference * 1e6:7.1f} µs")
        print(
            f"  client outbox, nobody subscribed:   {unheard * 1e6:7.1f} µs ({unheard / reference - 1:+.1%})"
        )
        print(
            f"  client outbox, failures subscribed: {heard * 1e6:7.1f} µs ({heard / reference - 1:+.1%})"
        )
        print(f"  failures kept in the outbox: {kept:,} ({args.runs} runs)")

        with runtime.sessions() as session, session.begin():
            session.execute(delete(ClientEventMessage))
        failures = [
            r for r in rows(clients, args.events * 10) if r["type"] == EventType.DELIVERY_FAILED
        ]
        with runtime.sessions() as session, session.begin():
            timeline.record_many(session, failures)
        events = waiting(runtime)
        began, used = time.perf_counter(), time.process_time()
        while True:
            with runtime.sessions() as session, session.begin():
                done = client_events.forward(
                    session, now=utcnow(), public_url="https://hub.example.com"
                )
            if done.taken < client_events.BATCH:
                break
        wall, cpu = time.perf_counter() - began, time.process_time() - used
        with runtime.reads() as session:
            made = session.scalar(
                select(func.count()).where(Notification.source == client_events.SOURCE)
            )
        print(
            f"client_events.forward of {events:,} waiting failures ({EMPLOYEES} employees, scope teams):"
        )
        print(
            f"  {events / wall:,.0f} events/s, {wall / events * 1e3:.2f} ms and {cpu / events * 1e3:.2f} ms CPU per event; {made:,} notifications, {waiting(runtime)} left"
        )
        runtime.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
