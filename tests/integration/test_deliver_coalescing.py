"""Under load one delivery job does the work of many: it tops itself up with ready rows of
its channel; each message still goes once."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hub.db.models import Capture, Delivery
from hub.dispatch import claim
from hub.dispatch.outcome_writer import Recorded
from hub.domain import Channel, DeferralReason, DeliveryState
from hub.runtime import Runtime
from hub.workers.service import Workers
from tests.dispatching import ok, person, topic, wait_for

RECEIPT = {"": {"email_subject": "Receipt {{ data.n }}", "email_text": "Thanks, {{ data.n }}"}}
PEOPLE = 30


@pytest.fixture
def idle(runtime: Runtime) -> Iterator[Workers]:
    """Wired but not consuming until the test starts them."""
    wired = Workers(runtime)
    yield wired
    wired.stop()


def _people(client: TestClient, auth: dict[str, str]) -> list[str]:
    topic(client, auth, "receipts", required=True, allowed_channels=["email"])
    names = [f"p{i}" for i in range(PEOPLE)]
    for name in names:
        person(client, auth, name, email=f"{name}@example.com")
    return names


def _post(client: TestClient, auth: dict[str, str], who: str, n: int) -> int:
    body = {"topic": "receipts", "recipients": [who], "content": RECEIPT, "data": {"n": n}}
    headers = auth | {"Idempotency-Key": f"receipt-{n}"}
    return int(ok(client.post("/v1/notifications", json=body, headers=headers), 202)["id"])


def _captures(runtime: Runtime) -> list[Capture]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Capture)))


def test_a_backlog_of_notifications_is_each_sent_exactly_once_by_fewer_jobs(
    client: TestClient,
    auth: dict[str, str],
    runtime: Runtime,
    idle: Workers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    names = _people(client, auth)
    total = 300
    posted = [_post(client, auth, names[n % PEOPLE], n) for n in range(total)]
    jobs: Counter[str] = Counter()
    deliver, fan_out = idle.dispatcher.deliver, idle.dispatcher.fan_out

    def counted_deliver(channel: Channel, ids: Sequence[int]) -> Recorded:
        done = deliver(channel, ids)
        jobs["deliver"] += 1
        jobs["deliver that sent"] += bool(done.sent)
        return done

    def counted_fan_out(notification_id: int) -> Any:
        step = fan_out(notification_id)
        jobs["fan_out"] += 1
        jobs["fan_out that queued"] += bool(step.deliver)
        return step

    monkeypatch.setattr(idle.dispatcher, "deliver", counted_deliver)
    monkeypatch.setattr(idle.dispatcher, "fan_out", counted_fan_out)
    idle.start(sweep=False)  # the 300 jobs were waiting: the workers find a backlog
    wait_for("every receipt sent", lambda: len(_captures(runtime)) >= total or None, 60)
    wait_for("every fan-out job done", lambda: jobs["fan_out"] >= total or None)

    captures = _captures(runtime)
    assert len(captures) == total
    assert len({c.delivery_id for c in captures}) == total  # no delivery sent twice
    assert sorted(c.subject for c in captures) == sorted(f"Receipt {n}" for n in range(total))
    with runtime.sessions() as session:
        rows = session.execute(select(Delivery.notification_id, Delivery.state)).all()
    assert sorted(r.notification_id for r in rows) == sorted(posted)
    assert {r.state for r in rows} == {DeliveryState.SENT}
    assert jobs["fan_out"] == total  # one notification per fan-out job
    assert jobs["deliver that sent"] < total  # each sent many


def test_a_top_up_takes_only_ready_rows_of_its_channel_with_no_reason(
    client: TestClient, auth: dict[str, str], runtime: Runtime, idle: Workers
) -> None:
    names = _people(client, auth)
    ids = [_post(client, auth, names[n], n) for n in range(6)]
    queued = []
    for notification_id in ids:
        ((channel, rows),) = idle.dispatcher.fan_out(notification_id).deliver
        assert channel is Channel.EMAIL
        queued += rows
    assert len(queued) == 6
    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(hours=1)
    own, fresh, digest, waiting, sms, not_yet = queued
    with runtime.sessions() as session, session.begin():
        session.execute(
            update(Delivery).where(Delivery.id == digest).values(reason=DeferralReason.DIGEST)
        )
        session.execute(
            update(Delivery).where(Delivery.id == waiting).values(reason=DeferralReason.QUIET_HOURS)
        )
        session.execute(update(Delivery).where(Delivery.id == sms).values(channel=Channel.SMS))
        session.execute(update(Delivery).where(Delivery.id == not_yet).values(not_before=later))
    with runtime.sessions() as session, session.begin():
        took = claim.claim(
            session,
            [own],
            now=now,
            send_lease=dt.timedelta(minutes=2),
            top_up=claim.TopUp(Channel.EMAIL, 99),
        )
    assert [c.id for c in took] == [own, fresh]
    with runtime.reads() as session:
        assert not claim.any_claimable(session, [own, fresh], now=now)
        assert claim.any_claimable(session, [digest], now=now)
    # The job of a row another job took returns without sending it again.
    assert idle.dispatcher.deliver(Channel.EMAIL, [fresh]).sent == 0
