"""Scheduled notifications through the real dispatch path, on SQLite and PostgreSQL: one with
a `send_at` waits, goes when the sweeper's (injected) clock passes it and not before;
cancelled first, it never goes; cancelling once it went is 409; a cancel is on each named
recipient's timeline; and a send_at a moment ahead goes by itself on a running hub."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.db.base import utcnow
from hub.db.models import Topic
from hub.domain import NotificationState, Scope
from hub.runtime import Runtime
from hub.services import notification_schedule, notifications
from hub.settings import Settings
from hub.workers.service import Workers
from tests import seeding
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import Clock, hub_running, notification, ok, person, settled, timeline, topic

CONTENT = {"": {"email_subject": "Your invoice", "email_text": "It is ready."}}


Wired = tuple[TestClient, dict[str, str], Workers, Clock]


@pytest.fixture
def wired(database_url: str) -> Iterator[Wired]:
    """A hub whose workers run but do not sweep by themselves: the test sweeps, after setting
    the clock. `billing` may notify; the topic `invoices` and Ada (by e-mail) exist."""
    clock = Clock(utcnow())
    runtime = Runtime.build(Settings(database_url=database_url, secret_key=TEST_SECRET))
    workers = Workers(runtime, clock=clock)
    workers.start(sweep=False)
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            admin = make_key(runtime, "set-up", Scope.ADMIN)
            topic(client, admin, "invoices")
            person(client, admin, "ada", email="ada@example.com", subscribe={"invoices": ["email"]})
            yield client, make_key(runtime, "billing", Scope.NOTIFY), workers, clock
    finally:
        workers.stop()
        runtime.close()


def schedule(client: TestClient, auth: dict[str, str], send_at: dt.datetime) -> Any:
    body = {
        "topic": "invoices",
        "content": CONTENT,
        "recipients": ["ada"],
        "send_at": send_at.isoformat(),
    }
    return ok(client.post("/v1/notifications", json=body, headers=auth), 202)


def test_a_scheduled_notification_goes_when_its_time_comes_and_not_before(wired: Wired) -> None:
    client, auth, workers, clock = wired
    send_at = (utcnow() + dt.timedelta(hours=3)).replace(microsecond=0)
    accepted = schedule(client, auth, send_at)
    assert accepted["state"] == "scheduled"
    assert dt.datetime.fromisoformat(accepted["send_at"]) == send_at

    clock.set(send_at - dt.timedelta(seconds=1))
    workers.sweep_once()
    waiting = notification(client, auth, accepted["id"])
    assert (waiting["state"], waiting["counts"]) == ("scheduled", {})
    assert dt.datetime.fromisoformat(waiting["send_at"]) == send_at

    clock.set(send_at + dt.timedelta(seconds=1))
    workers.sweep_once()
    went = settled(client, auth, accepted["id"])
    assert went["counts"] == {"sent": 1}
    (delivery,) = went["deliveries"]["items"]
    assert dt.datetime.fromisoformat(delivery["sent_at"]) >= send_at
    workers.sweep_once()  # a later sweep starts nothing again
    assert notification(client, auth, accepted["id"])["counts"] == {"sent": 1}


def test_cancelled_before_its_time_it_never_goes_and_the_person_sees_why(wired: Wired) -> None:
    client, auth, workers, clock = wired
    send_at = utcnow() + dt.timedelta(hours=3)
    accepted = schedule(client, auth, send_at)

    first = ok(client.post(f"/v1/notifications/{accepted['id']}/cancel", headers=auth))
    assert (first["id"], first["state"]) == (accepted["id"], "cancelled")
    again = ok(client.post(f"/v1/notifications/{accepted['id']}/cancel", headers=auth))
    assert again == first  # idempotent: the first cancel's time, not a new one

    clock.set(send_at + dt.timedelta(minutes=10))
    workers.sweep_once()
    read = notification(client, auth, accepted["id"])
    assert (read["state"], read["counts"], read["fanned_out_at"]) == ("cancelled", {}, None)
    assert read["cancelled_at"] == first["cancelled_at"]

    admin = make_key(workers.runtime, "reader", Scope.ADMIN)
    cancels = [e for e in timeline(client, admin, "ada") if e["type"] == "notification.cancelled"]
    assert len(cancels) == 1  # the second cancel changed nothing, so recorded nothing
    (event,) = cancels
    assert (event["actor_kind"], event["actor"], event["topic"]) == (
        "api_key",
        "billing",
        "invoices",
    )
    assert event["changes"] == {"notification": accepted["id"]}
    assert not [e for e in timeline(client, admin, "ada") if e["type"].startswith("delivery.")]


def test_once_it_has_gone_cancelling_is_409_saying_so(wired: Wired) -> None:
    client, auth, _, _ = wired
    body = {"topic": "invoices", "content": CONTENT, "recipients": ["ada"]}
    accepted = ok(client.post("/v1/notifications", json=body, headers=auth), 202)
    settled(client, auth, accepted["id"])

    refused = client.post(f"/v1/notifications/{accepted['id']}/cancel", headers=auth)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "conflict"
    assert "already going out (1 delivery exists)" in error["message"]
    assert notification(client, auth, accepted["id"])["state"] == "fanned_out"

    missing = client.post("/v1/notifications/987654/cancel", headers=auth)
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "not_found")
    bad = client.post("/v1/notifications/0/cancel", headers=auth)
    assert bad.status_code == 422
    assert bad.json()["error"]["details"][0]["field"] == "notification_id"
    reader = make_key(wired[2].runtime, "contacts-only", Scope.CONTACTS)
    assert (
        client.post(f"/v1/notifications/{accepted['id']}/cancel", headers=reader).status_code == 403
    )


def test_an_accepted_one_whose_fan_out_has_not_begun_can_be_cancelled(wired: Wired) -> None:
    """Accepted but not yet fanned out (its job still queued): cancelled, the fan-out that
    runs afterwards writes nothing."""
    client, auth, workers, clock = wired
    runtime = workers.runtime
    with runtime.sessions() as session:
        topic_id = session.query(Topic.id).filter(Topic.key == "invoices").scalar()
        made = notifications.create(
            session,
            topic_id=topic_id,
            template_key=None,
            template_version=None,
            variants=CONTENT,
            data={},
            source="api:billing",
            now=utcnow(),
            render_as=None,
        )
        session.commit()
    cancelled = ok(client.post(f"/v1/notifications/{made}/cancel", headers=auth))
    assert cancelled["state"] == "cancelled"
    step = workers.dispatcher.fan_out(made)  # the job that was queued when the cancel came
    assert (step.recipients, step.deliver) == (0, [])
    clock.set(utcnow() + dt.timedelta(minutes=10))  # past its fan-out lease: not taken back
    assert made not in workers.dispatcher.sweep().fan_out
    read = notification(client, auth, made)
    assert (read["state"], read["counts"]) == ("cancelled", {})


def test_a_send_at_a_moment_ahead_goes_by_itself_on_a_running_hub(database_url: str) -> None:
    settings = Settings(
        database_url=database_url, secret_key=TEST_SECRET, sweep_interval_seconds=0.2
    )
    with hub_running(settings) as (client, runtime):
        auth = make_key(runtime, "billing", Scope.ADMIN)
        topic(client, auth, "invoices")
        person(client, auth, "ada", email="ada@example.com", subscribe={"invoices": ["email"]})
        send_at = utcnow() + dt.timedelta(seconds=1.5)
        accepted = ok(
            client.post(
                "/v1/notifications",
                json={"topic": "invoices", "content": CONTENT, "send_at": send_at.isoformat()},
                headers=auth,
            ),
            202,
        )
        assert notification(client, auth, accepted["id"])["state"] == "scheduled"
        went = settled(client, auth, accepted["id"])
        (delivery,) = went["deliveries"]["items"]
        sent_at = dt.datetime.fromisoformat(delivery["sent_at"])
        assert send_at <= sent_at < send_at + dt.timedelta(seconds=5)


@pytest.mark.postgres
def test_two_sweepers_start_each_due_notification_once(postgres_database: str) -> None:
    """On PostgreSQL the second sweeper skips the rows the first holds."""
    from tests.conftest import truncate

    runtime = Runtime.build(Settings(database_url=postgres_database, secret_key=TEST_SECRET))
    try:
        now = utcnow()
        with runtime.sessions() as session:
            topic_id = seeding.topic(session.connection(), "invoices", ["email"], now=now)
            ids = [
                notifications.create(
                    session,
                    topic_id=topic_id,
                    template_key=None,
                    template_version=None,
                    variants=CONTENT,
                    data={},
                    source="api:billing",
                    now=now,
                    render_as=None,
                    send_at=now + dt.timedelta(seconds=1),
                )
                for _ in range(3)
            ]
            session.commit()
        lease = dt.timedelta(minutes=5)
        later = now + dt.timedelta(seconds=2)
        with runtime.sessions() as first, runtime.sessions() as second:
            taken = notification_schedule.start_due(first, now=later, lease=lease)
            assert sorted(taken) == sorted(ids)
            assert notification_schedule.start_due(second, now=later, lease=lease) == []
            first.commit()
            second.commit()
        with runtime.sessions() as session:
            with runtime.sessions() as again:
                assert notification_schedule.start_due(again, now=later, lease=lease) == []
            states = {notifications.get(session, i).state for i in ids}
            assert states == {NotificationState.ACCEPTED}
    finally:
        runtime.close()
        truncate(postgres_database)


def test_only_the_sending_key_or_an_admin_may_cancel(settings: Settings) -> None:
    with hub_running(settings) as (client, runtime):
        admin = make_key(runtime, "admin", Scope.ADMIN)
        topic(client, admin, "orders")
        person(client, admin, "ada", email="ada@example.com")
        billing = make_key(runtime, "billing", Scope.NOTIFY)
        other = make_key(runtime, "marketing-tool", Scope.NOTIFY)
        later = (utcnow() + dt.timedelta(days=1)).isoformat()
        body = {
            "topic": "orders",
            "recipients": ["ada"],
            "content": {"": {"email_subject": "Soon", "email_text": "Soon."}},
            "send_at": later,
        }
        first = ok(client.post("/v1/notifications", json=body, headers=billing), 202)
        second = ok(client.post("/v1/notifications", json=body, headers=billing), 202)
        refused = client.post(f"/v1/notifications/{first['id']}/cancel", headers=other)
        assert refused.status_code == 403, refused.text
        assert "only the key that sent it" in refused.json()["error"]["message"]
        ok(client.post(f"/v1/notifications/{first['id']}/cancel", headers=billing))
        ok(client.post(f"/v1/notifications/{second['id']}/cancel", headers=admin))
        states = {
            n: ok(client.get(f"/v1/notifications/{n}", headers=admin))["state"]
            for n in (first["id"], second["id"])
        }
        assert set(states.values()) == {"cancelled"}
