"""Which timeline events feed which client topic (`client_outbox.topic_of`): a table."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from hub.domain import ClientTopic, EventType
from hub.events.client_outbox import snapshot, topic_of

LEFT = {"status": {"before": "subscribed", "after": "unsubscribed"}}
CHANNELS = {"channels": {"before": ["email"], "after": ["sms"]}}
EVERYTHING = {"unsubscribed_all": {"before": False, "after": True}}
QUIET = {"quiet_start": {"before": None, "after": "22:00"}}
DIGEST = {"digest": {"lead_delivery_id": 7, "items": 3}}

PERSON = {"actor_kind": "self_service", "source": "self-service"}
API = {"actor_kind": "api_key", "source": "api"}
IMPORT = {"actor_kind": "api_key", "source": "api.import"}
STAFF = {"actor_kind": "staff", "source": "console"}

CASES: list[tuple[EventType, str | None, Any, ClientTopic | None]] = [
    (EventType.INBOUND_MESSAGE, None, {"body": "Call me"}, ClientTopic.REPLIES),
    (EventType.INBOUND_MESSAGE, "stop", {"body": "STOP"}, None),  # told as its suppression
    (EventType.INBOUND_MESSAGE, "start", {"body": "START"}, None),
    (EventType.SUPPRESSION_ADDED, "sms_stop", None, ClientTopic.REFUSALS),
    (EventType.SUPPRESSION_ADDED, "voice_opt_out", None, ClientTopic.REFUSALS),
    (EventType.SUPPRESSION_ADDED, "carrier_opt_out", None, ClientTopic.REFUSALS),
    (EventType.SUPPRESSION_ADDED, "complaint", None, ClientTopic.REFUSALS),
    (EventType.SUPPRESSION_ADDED, "hard_bounce", None, None),  # told as its bounce
    (EventType.SUPPRESSION_ADDED, "manual", None, None),  # staff did it, not the client
    (EventType.REFUSAL_REASON, "too_many", {"topic": "offers"}, ClientTopic.REFUSALS),
    (EventType.SUBSCRIPTION_CHANGED, None, LEFT, ClientTopic.REFUSALS),
    (EventType.SUBSCRIPTION_CHANGED, None, CHANNELS, ClientTopic.PREFERENCES),
    (EventType.PREFERENCES_CHANGED, None, EVERYTHING, ClientTopic.REFUSALS),
    (EventType.PREFERENCES_CHANGED, None, QUIET, ClientTopic.PREFERENCES),
    (EventType.DELIVERY_CLICKED, None, {"link": "https://x.example", "machine": True}, None),
    (EventType.DELIVERY_BOUNCED, "hard_bounce", None, ClientTopic.FAILURES),
    (EventType.DELIVERY_BOUNCED, "complaint", None, None),  # told as its suppression
    (EventType.DELIVERY_FAILED, "rejected", None, ClientTopic.FAILURES),
    # A failed digest of three items: the lead's event tells it, the others' do not.
    (EventType.DELIVERY_FAILED, "rejected", {"delivery_id": 7, **DIGEST}, ClientTopic.FAILURES),
    (EventType.DELIVERY_FAILED, "rejected", {"delivery_id": 8, **DIGEST}, None),
    (EventType.DELIVERY_CLICKED, None, {"link": "https://x.example"}, ClientTopic.CLICKS),
    (EventType.DELIVERY_SENT, None, None, None),
    (EventType.DELIVERY_RETRYING, None, None, None),
    (EventType.CONTACT_UPDATED, None, {"name": {"before": "A", "after": "B"}}, None),
]


@pytest.mark.parametrize(("kind", "reason", "changes", "expected"), CASES)
def test_each_event_feeds_its_topic(
    kind: EventType, reason: str | None, changes: Any, expected: ClientTopic | None
) -> None:
    assert topic_of({"type": kind, "reason": reason, "changes": changes} | PERSON) is expected


@pytest.mark.parametrize(
    ("who", "changes", "expected"),
    [
        (PERSON, CHANNELS, ClientTopic.PREFERENCES),
        (API, CHANNELS, None),  # the company changed it, not the client
        (STAFF, QUIET, None),
        (API, LEFT, ClientTopic.REFUSALS),  # a service relaying the client's refusal
        (STAFF, LEFT, ClientTopic.REFUSALS),
        (IMPORT, LEFT, None),  # a bulk change is not news of one client
        (IMPORT, CHANNELS, None),
    ],
)
def test_who_changed_a_subscription_decides_whether_it_is_news(
    who: dict[str, str], changes: Any, expected: ClientTopic | None
) -> None:
    row = {"type": EventType.SUBSCRIPTION_CHANGED, "reason": None, "changes": changes} | who
    assert topic_of(row) is expected


def test_odd_stored_changes_feed_no_topic_and_never_raise() -> None:
    for changes in ("text", ["list"], {"status": "unsubscribed"}, {"status": None}, None):
        found = topic_of({"type": EventType.SUBSCRIPTION_CHANGED, "changes": changes} | PERSON)
        assert found is ClientTopic.PREFERENCES
    assert topic_of({"type": EventType.DELIVERY_CLICKED, "changes": "odd"}) is ClientTopic.CLICKS


def test_the_snapshot_keeps_no_ip_or_user_agent() -> None:
    row = {
        "type": EventType.SUBSCRIPTION_CHANGED,
        "occurred_at": dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC),
        "topic_key": "offers",
        "channel": None,
        "reason": None,
        "changes": LEFT,
        "actor_kind": "self_service",
        "actor": "the person",
        "source": "self-service",
        "ip": "203.0.113.9",
        "user_agent": "Mozilla/5.0",
    }
    kept = snapshot(row)
    assert "ip" not in kept
    assert "user_agent" not in kept
    assert kept["occurred_at"] == "2026-07-01T12:00:00+00:00"
    assert kept["changes"] == LEFT
