"""What the console's manager pages cost over a large timeline, on SQLite or PostgreSQL.

    .venv/bin/python bench/manager_figures.py [--clients 100000] [--events 2000000]
        [--database-url postgresql+psycopg://...] [--runs 3]

Seeds 200 employees owning `--clients` clients, and `--events` timeline events over 90 days
(nine in ten deliveries sent or delivered, the rest the kinds the figures count: refusals,
failures, replies, preference changes). Times, best of `--runs` with the CPU beside:
`manager_figures.by_manager` for the last 30 days (the "Clients per manager" page and CSV),
and one "My clients" page of 50 (`clients_page`, `counts_for`, `latest`). The reference, in
the same run: `SELECT count(*)` over the whole timeline, what a full scan costs here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import make_url

from hub.db import migrate
from hub.db.base import utcnow
from hub.db.models import Contact, ContactEvent
from hub.domain import ContactKind, EventType
from hub.runtime import Runtime
from hub.services import manager_figures
from hub.settings import Settings

EMPLOYEES = 200
CHUNK = 20_000
KINDS = [
    (EventType.DELIVERY_SENT, None, None, 45),
    (EventType.DELIVERY_DELIVERED, None, None, 45),
    (EventType.DELIVERY_FAILED, "rejected", None, 3),
    (EventType.SUPPRESSION_ADDED, "sms_stop", None, 1),
    (EventType.INBOUND_MESSAGE, None, {"body": "hello"}, 3),
    (
        EventType.SUBSCRIPTION_CHANGED,
        None,
        {"status": {"before": "subscribed", "after": "unsubscribed"}},
        1,
    ),
    (EventType.PREFERENCES_CHANGED, None, {"quiet_start": {"before": None, "after": "22:00"}}, 2),
]


def seed(runtime: Runtime, clients: int, events: int) -> int:
    now, rng = utcnow(), random.Random(7)
    with runtime.engine.begin() as db:
        db.execute(
            insert(Contact),
            [_contact(f"e{i}", ContactKind.EMPLOYEE, None, now) for i in range(EMPLOYEES)],
        )
        first = db.execute(select(func.min(Contact.id))).scalar_one()
        for start in range(0, clients, CHUNK):
            db.execute(
                insert(Contact),
                [
                    _contact(f"c{i}", ContactKind.CLIENT, first + i % EMPLOYEES, now)
                    for i in range(start, min(start + CHUNK, clients))
                ],
            )
        low = db.execute(
            select(func.min(Contact.id)).where(Contact.kind == ContactKind.CLIENT)
        ).scalar_one()
        weights = [k[3] for k in KINDS]
        for start in range(0, events, CHUNK):
            rows = []
            for _ in range(min(CHUNK, events - start)):
                kind, reason, changes, _w = rng.choices(KINDS, weights)[0]
                at = now - dt.timedelta(seconds=rng.randrange(90 * 86400))
                rows.append(
                    {
                        "contact_id": low + rng.randrange(clients),
                        "occurred_at": at,
                        "type": kind,
                        "actor_kind": "system",
                        "actor": "bench",
                        "source": "bench",
                        "topic_key": None,
                        "channel": None,
                        "changes": changes,
                        "reason": reason,
                        "ip": None,
                        "user_agent": None,
                    }
                )
            db.execute(insert(ContactEvent), rows)
    return int(first)


def _contact(
    external_id: str, kind: ContactKind, owner: int | None, now: dt.datetime
) -> dict[str, object]:
    return {"external_id": external_id, "kind": kind, "name": external_id.upper(), "timezone": "UTC",
            "attributes": {}, "owner_id": owner, "link_key": uuid.uuid4().hex[:16],
            "created_at": now, "updated_at": now}  # fmt: skip


def best(runs: int, work: Callable[[], object]) -> tuple[float, float]:
    walls, cpus = [], []
    for _ in range(runs):
        began, used = time.perf_counter(), time.process_time()
        work()
        walls.append(time.perf_counter() - began)
        cpus.append(time.process_time() - used)
    return min(walls), min(cpus)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url, drop = args.database_url, None
        if url is not None:  # a database of its own on that server, dropped at the end
            name = f"hub_bench_{uuid.uuid4().hex[:8]}"
            admin = create_engine(url, isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            url, drop = make_url(url).set(database=name).render_as_string(hide_password=False), name
        else:
            url = f"sqlite:///{folder}/hub.db"
        runtime = Runtime.build(Settings(database_url=url, secret_key="x" * 32))
        try:
            migrate.upgrade(runtime.engine)
            began = time.perf_counter()
            first = seed(runtime, args.clients, args.events)
            if runtime.engine.dialect.name == "postgresql":
                with runtime.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.execute(text("VACUUM ANALYZE"))
            print(
                f"{runtime.engine.dialect.name}: seeded {args.clients:,} clients of {EMPLOYEES} employees and {args.events:,} events in {time.perf_counter() - began:.0f} s"
            )
            period = manager_figures.Period.last(30, now=utcnow())

            def scan() -> object:
                with runtime.reads() as s:
                    return s.scalar(select(func.count()).select_from(ContactEvent))

            def report() -> object:
                with runtime.reads() as s:
                    return manager_figures.by_manager(s, period)

            def page() -> object:
                with runtime.reads() as s:
                    mine = manager_figures.clients_page(
                        s, first, manager_figures.Whose.MINE, before_id=None, limit=50
                    )
                    ids = [c.id for c in mine]
                    manager_figures.counts_for(s, ids, period)
                    return manager_figures.latest(s, mine, topics={}, now=utcnow())

            rows = report()
            assert len(rows) == EMPLOYEES, len(rows)  # type: ignore[arg-type]
            for label, work in (
                ("reference: count(*) of the timeline", scan),
                ("Clients per manager, 30 days", report),
                ("My clients, one page of 50", page),
            ):
                wall, cpu = best(args.runs, work)
                print(f"  {label:38} {wall * 1000:8.0f} ms  ({cpu * 1000:.0f} ms CPU here)")
        finally:
            runtime.close()
            if drop is not None:
                with admin.connect() as c:
                    c.execute(text(f'DROP DATABASE "{drop}" WITH (FORCE)'))
                admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
