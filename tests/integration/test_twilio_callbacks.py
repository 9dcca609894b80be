"""Twilio status callbacks: signed or refused, and monotonic whatever the arrival order.

Signatures are computed with the twilio library's own RequestValidator, as Twilio does.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select
from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

from hub.app import create_app
from hub.db.models import Contact, ContactEvent, Delivery, Notification, Suppression, Topic
from hub.domain import Channel, DeliveryState, NotificationState, Scope
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import PUBLIC_URL, TWILIO_TOKEN, person, topic, twilio_post

TOKEN, PUBLIC = TWILIO_TOKEN, PUBLIC_URL
URL = f"{PUBLIC}/inbound/twilio/status"


@pytest.fixture
def app(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], Runtime]]:
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        public_url=PUBLIC,
        twilio_auth_token=TOKEN,
    )
    runtime = Runtime.build(settings)
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
        yield client, make_key(runtime, "ops", Scope.ADMIN), runtime
    runtime.close()


def sent_sms(
    runtime: Runtime,
    client: TestClient,
    auth: dict[str, str],
    sid: str,
    channel: Channel = Channel.SMS,
) -> int:
    """A delivery Twilio accepted as `sid`, as the dispatcher would have left it."""
    topic(client, auth, "alerts")
    person(client, auth, f"p-{sid}", phone="+14155550150")
    now = dt.datetime.now(dt.UTC)
    with runtime.sessions() as session:
        topic_id = session.scalar(select(Topic.id).where(Topic.key == "alerts"))
        contact_id = session.scalar(select(Contact.id).where(Contact.external_id == f"p-{sid}"))
        notification_id = session.execute(
            insert(Notification).returning(Notification.id),
            [
                {
                    "topic_id": topic_id,
                    "template_key": None,
                    "variants": {},
                    "data": {},
                    "recipients": None,
                    "channels": None,
                    "source": "test",
                    "state": NotificationState.FANNED_OUT,
                    "cursor": 0,
                    "due_at": now,
                    "created_at": now,
                }
            ],
        ).scalar_one()
        delivery_id = session.execute(
            insert(Delivery).returning(Delivery.id),
            [
                {
                    "notification_id": notification_id,
                    "contact_id": contact_id,
                    "channel": channel,
                    "state": DeliveryState.SENT,
                    "address": "+14155550150",
                    "attempts": 1,
                    "ambiguous": False,
                    "provider": "twilio-sms",
                    "provider_id": sid,
                    "created_at": now,
                    "updated_at": now,
                    "sent_at": now,
                }
            ],
        ).scalar_one()
        session.commit()
    return int(delivery_id)


def post(client: TestClient, params: dict[str, str], *, signature: str | None = "valid") -> Any:
    return twilio_post(client, "/inbound/twilio/status", params, signature=signature)


def state(runtime: Runtime, delivery_id: int) -> Delivery:
    with runtime.sessions() as session:
        return session.get_one(Delivery, delivery_id)


def events(runtime: Runtime, kind: str) -> int:
    with runtime.sessions() as session:
        return len(list(session.scalars(select(ContactEvent).where(ContactEvent.type == kind))))


def message(sid: str, status: str, **extra: str) -> dict[str, str]:
    return {"MessageSid": sid, "MessageStatus": status, "AccountSid": "AC" + "0" * 32} | extra


def test_a_signed_callback_moves_the_delivery_forward_and_lands_on_the_timeline(
    app: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = app
    delivery_id = sent_sms(runtime, client, auth, "SM" + "1" * 32)
    assert post(client, message("SM" + "1" * 32, "delivered")).status_code == 204
    assert state(runtime, delivery_id).state is DeliveryState.DELIVERED
    timeline = client.get("/v1/contacts/p-SM" + "1" * 32 + "/timeline", headers=auth).json()
    assert timeline["items"][0]["type"] == "delivery.delivered"
    assert timeline["items"][0]["actor"] == "twilio"


@pytest.mark.parametrize(
    ("forgery", "signature"),
    [("missing", None), ("garbage", "not-a-signature"), ("other key", "other")],
)
def test_forged_or_missing_signatures_get_403_and_change_nothing(
    app: tuple[TestClient, dict[str, str], Runtime], forgery: str, signature: str | None
) -> None:
    client, auth, runtime = app
    sid = "SM" + "2" * 32
    delivery_id = sent_sms(runtime, client, auth, sid)
    params = message(sid, "undelivered")
    if signature == "other":
        signature = RequestValidator("another-token").compute_signature(URL, params)
    answer = post(client, params, signature=signature)
    assert answer.status_code == 403, forgery
    assert answer.json()["error"]["code"] == "forbidden"
    assert state(runtime, delivery_id).state is DeliveryState.SENT


def test_a_tampered_field_breaks_the_signature(
    app: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = app
    sid = "SM" + "3" * 32
    delivery_id = sent_sms(runtime, client, auth, sid)
    signed_for = RequestValidator(TOKEN).compute_signature(URL, message(sid, "delivered"))
    answer = post(client, message(sid, "failed"), signature=signed_for)
    assert answer.status_code == 403
    assert state(runtime, delivery_id).state is DeliveryState.SENT


@pytest.mark.parametrize(
    ("outcome", "final"),
    [
        ("delivered", DeliveryState.DELIVERED),
        ("undelivered", DeliveryState.FAILED),
    ],
)
def test_shuffled_and_duplicated_callbacks_end_in_the_right_state(
    app: tuple[TestClient, dict[str, str], Runtime], outcome: str, final: DeliveryState
) -> None:
    client, auth, runtime = app
    rng = random.Random(outcome)
    for round_ in range(5):
        sid = f"SM{round_:02d}" + "4" * 30
        delivery_id = sent_sms(runtime, client, auth, sid)
        history = ["queued", "sending", "sent", outcome] * 2  # every callback twice
        rng.shuffle(history)
        for status in history:
            assert post(client, message(sid, status)).status_code == 204
        assert state(runtime, delivery_id).state is final, history
    kind = "delivery.delivered" if final is DeliveryState.DELIVERED else "delivery.failed"
    assert events(runtime, kind) == 5  # one per delivery, however many callbacks came


def test_a_replayed_callback_changes_nothing(
    app: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = app
    sid = "SM" + "5" * 32
    sent_sms(runtime, client, auth, sid)
    params = message(sid, "delivered")
    assert post(client, params).status_code == 204
    before = events(runtime, "delivery.delivered")
    assert post(client, params).status_code == 204
    assert events(runtime, "delivery.delivered") == before == 1


def test_error_21610_is_a_carrier_opt_out_and_suppresses_the_number(
    app: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = app
    sid = "SM" + "6" * 32
    delivery_id = sent_sms(runtime, client, auth, sid)
    assert post(client, message(sid, "undelivered", ErrorCode="21610")).status_code == 204
    row = state(runtime, delivery_id)
    assert row.state is DeliveryState.FAILED
    assert row.error_code == "21610"
    with runtime.sessions() as session:
        suppression = session.scalar(select(Suppression))
    assert suppression is not None
    assert suppression.reason == "carrier_opt_out"
    assert suppression.address == "+14155550150"


def test_a_call_answered_by_a_machine_is_recorded(
    app: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = app
    sid = "CA" + "7" * 32
    delivery_id = sent_sms(runtime, client, auth, sid, channel=Channel.VOICE)
    params = {"CallSid": sid, "CallStatus": "completed", "AnsweredBy": "machine_end_beep"}
    assert post(client, params).status_code == 204
    row = state(runtime, delivery_id)
    assert row.state is DeliveryState.DELIVERED
    assert row.reason == "answered_by:machine_end_beep"
    busy = "CA" + "8" * 32
    busy_id = sent_sms(runtime, client, auth, busy, channel=Channel.VOICE)
    assert post(client, {"CallSid": busy, "CallStatus": "busy"}).status_code == 204
    assert state(runtime, busy_id).reason == "twilio:busy"


def test_an_unknown_sid_is_acknowledged_and_ignored(
    app: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, _, _ = app
    assert post(client, message("SM" + "9" * 32, "delivered")).status_code == 204


def test_one_callback_settles_every_item_of_an_sms_digest(
    app: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    """A digest sends its items as one text: they share its SID, and its fate."""
    client, auth, runtime = app
    sid = "SM" + "6" * 32
    items = [sent_sms(runtime, client, auth, sid) for _ in range(3)]
    assert post(client, message(sid, "delivered")).status_code == 204
    assert [state(runtime, i).state for i in items] == [DeliveryState.DELIVERED] * 3
    assert events(runtime, "delivery.delivered") == 3
    assert post(client, message(sid, "delivered")).status_code == 204  # a duplicate
    assert events(runtime, "delivery.delivered") == 3
