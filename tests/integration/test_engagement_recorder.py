"""The recorder between the tracked links and the database: it holds hits for the settle
window, writes each first hit once, keeps what the database refused, drops (and counts) what
does not fit, and writes what it holds when the process stops."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from hub.db.models import Delivery, Engagement
from hub.dispatch.engagement import Hit, Recorder
from hub.dispatch.tracked_links import Tracked
from hub.domain import EngagementKind
from hub.runtime import Runtime
from tests import reporting

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
CHROME = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sent(runtime: Runtime) -> list[int]:
    """Two e-mails that went (their delivery ids); nothing opened or clicked yet."""
    with runtime.engine.begin() as db:
        topic_id = reporting.topic(db, "offers", now=NOW)
        reporting.template(db, "offer", now=NOW)
        people = reporting.contacts(db, 1, 2, now=NOW)
        notification_id = reporting.notification(db, topic_id=topic_id, now=NOW)
        rows = [
            {"contact_id": p, "channel": "email", "state": "sent", "sent_at": NOW} for p in people
        ]
        reporting.deliveries(db, notification_id, rows)
        return list(
            db.scalars(
                select(Delivery.id)
                .where(Delivery.notification_id == notification_id)
                .order_by(Delivery.id)
            )
        )


def hit(delivery_id: int, link: int, seen: float, *, ua: str = CHROME) -> Hit:
    kind = EngagementKind.CLICK if link else EngagementKind.OPEN
    url = f"https://shop.example/{link}" if link else None
    tracked = Tracked(kind, delivery_id, link, url, NOW)
    return Hit(tracked, "GET", ua, "192.0.2.1", NOW + dt.timedelta(hours=1), seen)


def written(runtime: Runtime) -> list[tuple[int, str, int, bool, Any]]:
    with runtime.sessions() as session:
        rows = session.execute(
            select(
                Engagement.delivery_id,
                Engagement.kind,
                Engagement.link_index,
                Engagement.machine,
                Engagement.machine_reason,
            ).order_by(Engagement.id)
        )
        return [tuple(row) for row in rows]  # type: ignore[misc]


def test_hits_wait_for_the_window_then_each_first_one_is_written_once(
    runtime: Runtime, sent: list[int]
) -> None:
    clock = Clock()
    recorder = Recorder(runtime.sessions, settle=2.0, monotonic=clock)
    a, b = sent
    for seen, (delivery, link) in enumerate([(a, 0), (a, 1), (a, 1), (b, 1), (b, 2)]):
        recorder.add(hit(delivery, link, clock.now + seen * 0.1))
    assert recorder.flush() == 0  # nothing has settled
    assert written(runtime) == []
    clock.now += 3
    assert recorder.flush() == 4
    assert written(runtime) == [
        (a, "open", 0, False, None),
        (a, "click", 1, False, None),  # once: the repeat added nothing
        (b, "click", 1, True, "all_links"),  # two links of one message within the window
        (b, "click", 2, True, "all_links"),
    ]
    recorder.add(hit(a, 1, clock.now))
    clock.now += 3
    assert recorder.flush() == 0  # a later repeat adds nothing either
    recorder.close()


def test_a_refused_batch_is_kept_and_written_on_the_next_tick(
    runtime: Runtime, sent: list[int]
) -> None:
    failures = {"left": 1}

    class Flaky:
        def begin(self) -> Any:
            if failures["left"]:
                failures["left"] -= 1
                raise RuntimeError("database is locked")
            return runtime.sessions.begin()

    clock = Clock()
    flaky: sessionmaker[Session] = Flaky()  # type: ignore[assignment]
    recorder = Recorder(flaky, settle=0, monotonic=clock)
    recorder.add(hit(sent[0], 0, clock.now))
    assert recorder.flush() == 0  # refused: kept
    assert recorder.flush() == 1
    assert [row[:3] for row in written(runtime)] == [(sent[0], "open", 0)]


def test_past_its_limit_a_hit_is_counted_and_dropped_and_close_writes_the_rest(
    runtime: Runtime, sent: list[int]
) -> None:
    clock = Clock()
    recorder = Recorder(runtime.sessions, settle=60, limit=2, monotonic=clock)
    for link in (0, 1, 2):
        recorder.add(hit(sent[0], link, clock.now))
    assert recorder.dropped == 1
    recorder.close()  # unsettled, but the process is stopping: written now
    with runtime.sessions() as session:
        assert session.scalar(select(func.count()).select_from(Engagement)) == 2


def test_a_person_after_a_proxy_is_kept_and_anything_after_the_person_is_let_go(
    runtime: Runtime, sent: list[int]
) -> None:
    """Apple's and Gmail's proxies fetch the picture as the mail arrives: the person's own
    open later still counts. Once a person's row exists, repeats cost no read at all."""
    clock = Clock()
    recorder = Recorder(runtime.sessions, settle=0, monotonic=clock)
    proxy = (
        "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
    )
    recorder.add(hit(sent[0], 0, clock.now, ua=proxy))
    assert recorder.flush() == 1
    recorder.add(hit(sent[0], 0, clock.now))
    assert recorder.flush() == 1
    recorder.add(hit(sent[0], 0, clock.now, ua=proxy))
    recorder.add(hit(sent[0], 0, clock.now))
    assert recorder.flush() == 0
    assert [row[2:] for row in written(runtime)] == [(0, True, "privacy_proxy"), (0, False, None)]
