"""Dispatch through the capture sink: fan-out, refusals, idempotency, re-checks, recovery.

The real providers' peers are exercised in test_dispatch_peers.py; here every channel is
captured, so these tests look at the dispatcher's own decisions and records.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hub.channels.base import DeliveryError, OutgoingMessage, Receipt
from hub.db.base import utcnow
from hub.db.models import (
    Capture,
    DeadLetter,
    Delivery,
    IdempotencyKey,
    Notification,
    Suppression,
)
from hub.dispatch.dispatcher import Sender
from hub.domain import Channel, DeliveryState, SuppressionReason
from hub.queue import QUEUES
from hub.runtime import Runtime
from hub.services import idempotency
from hub.workers.service import Workers
from tests.dispatching import notification, ok, person, settled, timeline, topic, wait_for

HELLO = {
    "variants": {
        "": {
            "email_subject": "Hello {{ contact.name }}",
            "email_html": "<p>Hello {{ contact.name }}: {{ data.what }}</p>",
            "sms_body": "Hello {{ contact.name }}: {{ data.what }}",
        },
        "ru": {"email_subject": "Здравствуйте, {{ contact.name }}"},
    }
}


@pytest.fixture
def workers(runtime: Runtime) -> Iterator[Workers]:
    running = Workers(runtime)
    running.start(sweep=False)
    yield running
    running.stop()


@pytest.fixture
def idle(runtime: Runtime) -> Iterator[Workers]:
    """Wired but not consuming: the test drives each step itself."""
    wired = Workers(runtime)
    yield wired
    wired.stop()


def _send(client: TestClient, auth: dict[str, str], **body: Any) -> int:
    headers = dict(auth)
    if key := body.pop("idempotency_key", None):
        headers["Idempotency-Key"] = key
    answer = ok(client.post("/v1/notifications", json=body, headers=headers), 202)
    return int(answer["id"])


def _captures(runtime: Runtime) -> list[Capture]:
    with runtime.sessions() as session:
        return list(session.scalars(select(Capture).order_by(Capture.id)))


def test_a_topic_reaches_each_subscriber_on_their_channels_rendered_for_them(
    client: TestClient, auth: dict[str, str], runtime: Runtime, workers: Workers
) -> None:
    topic(client, auth, "news")
    ok(client.put("/v1/templates/hello", json=HELLO, headers=auth))
    person(
        client,
        auth,
        "ivan",
        name="Иван",
        email="ivan@example.com",
        phone="+14155550101",
        locale="ru-RU",
        subscribe={"news": ["email", "sms"]},
    )
    person(client, auth, "ann", name="Ann", email="ann@example.com", subscribe={"news": ["email"]})
    person(client, auth, "bob", name="Bob", email="bob@example.com")  # not subscribed

    nid = _send(client, auth, topic="news", template="hello", data={"what": "<b>news</b>"})
    body = settled(client, auth, nid)

    assert body["by_channel"] == {"email": {"sent": 2}, "sms": {"sent": 1}}
    sent = {(c.to, c.channel): c for c in _captures(runtime)}
    assert set(sent) == {
        ("ivan@example.com", Channel.EMAIL),
        ("ann@example.com", Channel.EMAIL),
        ("+14155550101", Channel.SMS),
    }
    assert sent[("ivan@example.com", Channel.EMAIL)].subject == "Здравствуйте, Иван"
    assert sent[("ann@example.com", Channel.EMAIL)].subject == "Hello Ann"
    html = sent[("ann@example.com", Channel.EMAIL)].html or ""
    assert "&lt;b&gt;news&lt;/b&gt;" in html
    assert "<b>news</b>" not in html
    assert "/unsubscribe/" in html
    assert "/preferences/" in html
    assert sent[("+14155550101", Channel.SMS)].text == "Hello Иван: <b>news</b>"
    events = [e for e in timeline(client, auth, "ivan") if e["type"] == "delivery.sent"]
    assert {e["channel"] for e in events} == {"email", "sms"}
    assert all(e["changes"]["notification_id"] == nid for e in events)
    assert timeline(client, auth, "bob")[0]["type"] == "contact.created"


def test_refusals_are_recorded_with_their_reason(
    client: TestClient, auth: dict[str, str], runtime: Runtime, workers: Workers
) -> None:
    topic(client, auth, "alerts")
    person(
        client,
        auth,
        "nophone",
        email="a@example.com",
        phone="+14155550109",
        subscribe={"alerts": ["sms", "email"]},
    )
    ok(client.patch("/v1/contacts/nophone", json={"phone": None}, headers=auth))  # number gone
    person(client, auth, "stopped", email="s@example.com", subscribe={"alerts": ["email"]})
    with runtime.sessions() as session:
        session.add(
            Suppression(
                channel=Channel.EMAIL,
                address="s@example.com",
                address_hash=runtime.hasher(Channel.EMAIL, "s@example.com"),
                reason=SuppressionReason.HARD_BOUNCE,
                source="test",
                actor="test",
            )
        )
        session.commit()
    nid = _send(client, auth, topic="alerts", content=HELLO["variants"], data={"what": "x"})
    body = settled(client, auth, nid)

    by_contact = {(d["contact"], d["channel"]): d for d in body["deliveries"]["items"]}
    assert by_contact[("nophone", "sms")]["state"] == "suppressed"
    assert by_contact[("nophone", "sms")]["reason"] == "no_address"
    assert by_contact[("nophone", "email")]["state"] == "sent"
    assert by_contact[("stopped", "email")]["state"] == "suppressed"
    assert by_contact[("stopped", "email")]["reason"] == "suppressed:hard_bounce"
    refused = [e for e in timeline(client, auth, "stopped") if e["type"] == "delivery.refused"]
    assert refused
    assert refused[0]["reason"] == "suppressed:hard_bounce"
    assert [c.to for c in _captures(runtime)] == ["a@example.com"]


def test_a_channel_without_content_is_refused_not_failed(
    client: TestClient, auth: dict[str, str], workers: Workers
) -> None:
    topic(client, auth, "calls")
    person(client, auth, "v", phone="+14155550102", subscribe={"calls": ["voice"]})
    nid = _send(client, auth, topic="calls", content={"": {"sms_body": "only sms"}})
    body = settled(client, auth, nid)
    assert body["deliveries"]["items"][0]["reason"] == "no_content"


def test_a_replay_with_the_same_key_sends_nothing_new(
    client: TestClient, auth: dict[str, str], runtime: Runtime, workers: Workers
) -> None:
    topic(client, auth, "news")
    person(client, auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
    request = {"topic": "news", "content": HELLO["variants"], "data": {"what": "once"}}
    first = client.post(
        "/v1/notifications", json=request, headers=auth | {"Idempotency-Key": "k-1"}
    )
    settled(client, auth, first.json()["id"])
    again = client.post(
        "/v1/notifications", json=request, headers=auth | {"Idempotency-Key": "k-1"}
    )

    assert again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    changed = client.post(
        "/v1/notifications",
        json=request | {"data": {"what": "twice"}},
        headers=auth | {"Idempotency-Key": "k-1"},
    )
    assert changed.status_code == 422
    assert changed.json()["error"]["code"] == "idempotency_key_reused"
    settled(client, auth, first.json()["id"])
    assert len(_captures(runtime)) == 1


def test_a_replay_while_the_first_request_runs_is_409(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    topic(client, auth, "news")
    request = {"topic": "news", "content": HELLO["variants"]}
    digest = idempotency.request_hash(
        "POST",
        "/v1/notifications",
        {
            "topic": "news",
            "recipients": None,
            "template": None,
            "content": {
                loc: {
                    "email_subject": None,
                    "email_html": None,
                    "email_text": None,
                    "sms_body": None,
                    "voice_say": None,
                    "webhook_json": None,
                }
                | parts
                for loc, parts in HELLO["variants"].items()
            },
            "data": {},
            "channels": None,
            "escalation": None,
            "send_at": None,
        },
    )
    with runtime.sessions() as session:  # the first request has reserved the key, not answered
        assert (
            idempotency.reserve(session, owner="key:test-service", key="k-2", digest=digest) is None
        )
    answer = client.post(
        "/v1/notifications", json=request, headers=auth | {"Idempotency-Key": "k-2"}
    )
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "idempotency_in_progress"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"topic": "nope", "content": HELLO["variants"]}, "topic"),
        ({"topic": "news", "template": "missing"}, "template"),
        ({"topic": "news", "content": HELLO["variants"], "recipients": ["ghost"]}, "recipients"),
        ({"topic": "news", "content": {"": {"sms_body": "{{ broken"}}}, "content..sms_body"),
        ({"topic": "news"}, "body"),
        ({"topic": "news", "content": {"ru": {"sms_body": "x"}}}, "content"),
    ],
)
def test_bad_notifications_are_422_naming_the_field(
    client: TestClient, auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    topic(client, auth, "news")
    answer = client.post("/v1/notifications", json=body, headers=auth)
    assert answer.status_code == 422, answer.text
    fields = [d["field"] for d in answer.json()["error"]["details"]]
    assert any(f.startswith(field) for f in fields), fields


def test_a_stop_between_fan_out_and_send_takes_effect(
    client: TestClient, auth: dict[str, str], runtime: Runtime, idle: Workers
) -> None:
    topic(client, auth, "news")
    person(client, auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
    nid = _send(client, auth, topic="news", content=HELLO["variants"], data={"what": "x"})
    step = idle.dispatcher.fan_out(nid)
    ((_channel, ids),) = step.deliver
    ok(client.delete("/v1/contacts/ann/subscriptions/news", headers=auth))

    idle.dispatcher.deliver(Channel.EMAIL, ids)
    body = notification(client, auth, nid)
    assert body["deliveries"]["items"][0]["state"] == "suppressed"
    assert body["deliveries"]["items"][0]["reason"] == "unsubscribed"
    assert _captures(runtime) == []


def test_a_duplicate_job_sends_once(
    client: TestClient, auth: dict[str, str], runtime: Runtime, idle: Workers
) -> None:
    topic(client, auth, "news")
    person(client, auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
    nid = _send(client, auth, topic="news", content=HELLO["variants"], data={"what": "x"})
    ((_, ids),) = idle.dispatcher.fan_out(nid).deliver
    assert idle.dispatcher.fan_out(nid).deliver == []  # a replayed fan-out adds nothing
    idle.dispatcher.deliver(Channel.EMAIL, ids)
    idle.dispatcher.deliver(Channel.EMAIL, ids)
    assert len(_captures(runtime)) == 1


def test_the_sweeper_resends_mail_lost_in_flight_under_the_same_key(
    client: TestClient, auth: dict[str, str], runtime: Runtime, idle: Workers
) -> None:
    topic(client, auth, "news")
    person(
        client,
        auth,
        "ann",
        email="ann@example.com",
        phone="+14155550103",
        subscribe={"news": ["email", "sms"]},
    )
    nid = _send(client, auth, topic="news", content=HELLO["variants"], data={"what": "x"})
    step = idle.dispatcher.fan_out(nid)
    ids = [i for _, batch in step.deliver for i in batch]
    past = utcnow() - dt.timedelta(seconds=1)
    with runtime.sessions() as session:  # a worker claimed them, then died
        session.execute(
            update(Delivery)
            .where(Delivery.id.in_(ids))
            .values(state=DeliveryState.SENDING, attempts=1, due_at=past)
        )
        session.commit()

    swept = idle.dispatcher.sweep()
    assert swept.lost_in_flight == 2
    with runtime.sessions() as session:
        rows = {d.channel: d for d in session.scalars(select(Delivery))}
    assert rows[Channel.EMAIL].state is DeliveryState.QUEUED
    assert rows[Channel.EMAIL].ambiguous
    assert rows[Channel.SMS].state is DeliveryState.UNKNOWN
    assert rows[Channel.SMS].ambiguous
    idle.dispatcher.deliver(Channel.EMAIL, [rows[Channel.EMAIL].id])
    (capture,) = _captures(runtime)
    assert capture.delivery_id == rows[Channel.EMAIL].id
    unknown = [e for e in timeline(client, auth, "ann") if e["type"] == "delivery.unknown"]
    assert len(unknown) == 2


class _Stalling:
    """A sender that stalls on its first batch until the sweeper has taken the batch back
    and a second worker has sent it (the lease ran out under a live but stuck worker)."""

    def __init__(self, real: Sender, meanwhile: Callable[[], None]) -> None:
        self.real = real
        self.meanwhile: Callable[[], None] | None = meanwhile
        self.sent: list[str] = []  # the keys handed to the provider, in order

    def provider(self, channel: Channel) -> str:
        return self.real.provider(channel)

    def rate(self, channel: Channel) -> float | None:
        return self.real.rate(channel)

    def send(self, messages: Sequence[OutgoingMessage]) -> list[Receipt | DeliveryError]:
        if self.meanwhile is not None:
            stalled, self.meanwhile = self.meanwhile, None
            stalled()
        self.sent += [m.key for m in messages]
        return self.real.send(messages)


def test_a_worker_whose_lease_ran_out_cannot_overwrite_the_resend(
    client: TestClient,
    auth: dict[str, str],
    runtime: Runtime,
    idle: Workers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic(client, auth, "news")
    person(client, auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
    nid = _send(client, auth, topic="news", content=HELLO["variants"], data={"what": "x"})
    ((_, ids),) = idle.dispatcher.fan_out(nid).deliver
    dispatcher = idle.dispatcher

    def lease_runs_out_and_another_worker_sends() -> None:
        with runtime.sessions() as session:
            session.execute(update(Delivery).values(due_at=utcnow() - dt.timedelta(seconds=1)))
            session.commit()
        assert dispatcher.sweep().lost_in_flight == 1
        dispatcher.deliver(Channel.EMAIL, ids)  # the resend, attempt 2

    dispatcher.sender = stalling = _Stalling(
        dispatcher.sender, lease_runs_out_and_another_worker_sends
    )
    with caplog.at_level(logging.WARNING, logger="hub.dispatch"):
        dispatcher.deliver(Channel.EMAIL, ids)  # attempt 1 comes back last

    with runtime.sessions() as session:
        (row,) = session.scalars(select(Delivery))
    assert (row.state, row.attempts, row.ambiguous) == (DeliveryState.SENT, 2, True)
    key = runtime.message_keys.key(nid, row.id, row.address or "")
    assert stalling.sent == [key] * 2, "both went, under one key"
    (capture,) = _captures(runtime)  # the resend's; the late answer is only logged
    assert capture.delivery_id == row.id
    kinds = [e["type"] for e in timeline(client, auth, "ann") if e["type"].startswith("delivery.")]
    assert kinds.count("delivery.sent") == 1
    assert kinds.count("delivery.unknown") == 1
    assert f"delivery {row.id} attempt 1: its send lease ran out" in caplog.text


def test_rows_leased_to_an_empty_queue_are_taken_back_before_their_lease_ends(
    client: TestClient, auth: dict[str, str], runtime: Runtime, idle: Workers
) -> None:
    """Redis restarted empty (or the embedded process restarted): the jobs are gone while
    their rows stay leased for five minutes. An empty queue gives them back after 45 s."""
    topic(client, auth, "news")
    for name in ("ann", "bob", "cy"):
        person(client, auth, name, email=f"{name}@example.com", subscribe={"news": ["email"]})
    nid = _send(client, auth, topic="news", content=HELLO["variants"], data={"what": "x"})
    ((_, ids),) = idle.dispatcher.fan_out(nid).deliver  # enqueued nowhere: the job is lost
    ann, bob, cy = ids
    now = utcnow()
    with runtime.sessions() as session:
        session.execute(
            update(Delivery).values(updated_at=now - dt.timedelta(seconds=46))
        )  # leased 46 s ago, lease still running
        session.execute(
            update(Delivery)
            .where(Delivery.id == cy)
            .values(not_before=now + dt.timedelta(minutes=5))  # a retry waiting its turn
        )
        session.commit()

    assert idle.dispatcher.sweep(idle=frozenset({"deliver.sms"})).deliver == []
    assert idle.dispatcher.sweep(idle=frozenset({"deliver.email"})).deliver == [
        (Channel.EMAIL, [ann, bob])
    ]
    assert idle.dispatcher.sweep(idle=frozenset({"deliver.email"})).deliver == [], "re-leased"
    empty = idle.runtime.enqueuer.idle()
    assert "fanout" not in empty, "the notification's fan-out job waits there"
    assert empty == frozenset(QUEUES) - {"fanout"}
    idle.runtime.enqueuer.deliver(Channel.EMAIL, [ann])
    assert "deliver.email" not in idle.runtime.enqueuer.idle()


def test_a_fan_out_leased_to_an_empty_queue_is_taken_back_before_its_lease_ends(
    client: TestClient, auth: dict[str, str], runtime: Runtime, idle: Workers
) -> None:
    topic(client, auth, "news")
    nid = _send(client, auth, topic="news", content=HELLO["variants"], data={"what": "x"})
    lease = dt.timedelta(seconds=runtime.settings.queue_lease_seconds)
    with runtime.sessions() as session:  # leased 50 s ago by a step whose job Redis lost
        leased = utcnow() - dt.timedelta(seconds=50) + lease
        session.execute(update(Notification).values(due_at=leased))
        session.commit()

    assert idle.dispatcher.sweep(idle=frozenset({"deliver.email"})).fan_out == []
    assert idle.dispatcher.sweep(idle=frozenset({"fanout"})).fan_out == [nid]
    assert idle.dispatcher.sweep(idle=frozenset({"fanout"})).fan_out == [], "re-leased"

    # A lease shorter than that rule (the fault tests use 4 s) still runs out as usual.
    idle.dispatcher.limits = replace(idle.dispatcher.limits, queue_lease=dt.timedelta(seconds=4))
    with runtime.sessions() as session:
        session.execute(update(Notification).values(due_at=utcnow() - dt.timedelta(seconds=1)))
        session.commit()
    assert idle.dispatcher.sweep(idle=frozenset({"fanout"})).fan_out == [nid]


def test_a_lost_fan_out_message_is_found_by_the_sweeper(
    client: TestClient, auth: dict[str, str], runtime: Runtime, idle: Workers
) -> None:
    topic(client, auth, "news")
    person(client, auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
    nid = _send(client, auth, topic="news", content=HELLO["variants"], data={"what": "x"})
    runtime.broker.flush_all()  # type: ignore[attr-defined]  # Redis lost it after the commit
    with runtime.sessions() as session:
        session.execute(update(Notification).values(due_at=utcnow() - dt.timedelta(seconds=1)))
        session.commit()

    assert idle.sweep_once() == 1
    idle.start(sweep=False)
    assert settled(client, auth, nid)["counts"] == {"sent": 1}


def test_a_poison_message_is_parked_and_can_be_replayed(
    client: TestClient, auth: dict[str, str], runtime: Runtime, workers: Workers
) -> None:
    from dramatiq import Message

    runtime.broker.enqueue(
        Message(
            queue_name="fanout",
            actor_name="fan_out",
            args=(1, 2, 3),
            kwargs={},
            options={"max_retries": 1, "min_backoff": 10, "max_backoff": 20},
        )
    )

    def parked() -> list[DeadLetter]:
        with runtime.sessions() as session:
            return list(session.scalars(select(DeadLetter)))

    (letter,) = wait_for("the dead letter", parked)
    assert letter.actor == "fan_out"
    assert letter.args == [1, 2, 3]
    listed = ok(client.get("/v1/dead-letters", headers=auth))
    assert listed["items"][0]["id"] == letter.id
    assert "Error" in listed["items"][0]["error"]
    replayed = ok(client.post(f"/v1/dead-letters/{letter.id}/replay", headers=auth))
    assert replayed["replayed_at"] is not None
    again = client.post(f"/v1/dead-letters/{letter.id}/replay", headers=auth)
    assert again.status_code == 409


def test_erasure_removes_the_captured_copies_of_their_messages(
    client: TestClient, auth: dict[str, str], runtime: Runtime, workers: Workers
) -> None:
    topic(client, auth, "news")
    person(client, auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
    person(client, auth, "bob", email="bob@example.com", subscribe={"news": ["email"]})
    nid = _send(client, auth, topic="news", content=HELLO["variants"], data={"what": "x"})
    settled(client, auth, nid)
    assert len(_captures(runtime)) == 2

    ok(client.delete("/v1/contacts/ann", headers=auth))
    assert [c.to for c in _captures(runtime)] == ["bob@example.com"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/notifications/2399156253017293979648"),
        ("POST", "/v1/dead-letters/99999999999999999999/replay"),
        ("DELETE", "/v1/suppressions/99999999999999999999"),
        ("GET", "/v1/notifications/0"),
    ],
)
def test_an_id_out_of_range_is_422_not_an_overflow(
    client: TestClient, auth: dict[str, str], method: str, path: str
) -> None:
    answer = client.request(method, path, headers=auth)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"][0]["field"].endswith("_id")


def test_the_sweeper_forgets_idempotency_keys_after_48_hours(
    runtime: Runtime, idle: Workers
) -> None:
    now = utcnow()
    with runtime.sessions() as session:
        for key, age in (("old", dt.timedelta(hours=49)), ("recent", dt.timedelta(hours=23))):
            session.add(
                IdempotencyKey(owner="key:x", key=key, request_hash="h", created_at=now - age)
            )
        session.commit()
    idle.dispatcher.sweep()
    with runtime.sessions() as session:
        kept = list(session.scalars(select(IdempotencyKey.key)))
    assert kept == ["recent"]
