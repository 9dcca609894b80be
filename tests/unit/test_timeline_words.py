"""Every timeline event kind in plain words: one example at least of each, its data shaped as
the hub's writers shape it (hub/dispatch/outcome_writer.py, fanout.py, sweeper.py,
provider_status.py, hub/services/bounces.py, subscriptions.py, optin.py, suppressions.py,
inbound.py, contacts.py, contact_preferences.py, notifications.py, notification_schedule.py).
A kind added to `EventType` without words (and an example here) fails the first two tests;
odd stored data never raises."""

# The words use typographic quotation marks and dashes; so do the expected sentences.
# ruff: noqa: RUF001

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain import EventType
from hub.services.timeline_phrases import MAX_QUOTED
from hub.services.timeline_words import (
    MAX_DETAILS,
    WORDED,
    Event,
    Known,
    Ref,
    RefKind,
    Sending,
    details,
    fallback,
    plain,
    sentence,
)

NOW = dt.datetime(2026, 12, 7, 6, 0, tzinfo=dt.UTC)
KNOWN = Known(
    now=NOW,
    zone="Europe/Berlin",
    notifications={
        3: Sending(
            campaign_id=7, campaign_name="Spring offer", template_key="offer", template_version=2
        ),
        4: Sending(template_key="receipt", template_version=1),
    },
    addresses={11: "ada@example.com", 12: "+447700900123", 13: None, 14: "https://crm.example/h"},
    topics={"offers": "Offers", "orders": "Order updates"},
)
SPRING = "for campaign ‘Spring offer’ (notification #3)"


def sent(delivery_id: int, notification_id: int = 3, **extra: Any) -> dict[str, Any]:
    """A delivery event's changes as `outcome_writer._event` writes them."""
    return {"delivery_id": delivery_id, "notification_id": notification_id, **extra}


def changed(**fields: tuple[Any, Any]) -> dict[str, Any]:
    return {name: {"before": b, "after": a} for name, (b, a) in fields.items()}


DISPATCHER = {"actor_kind": "system", "actor": "dispatcher", "source": "dispatch"}
TWILIO = {"actor_kind": "inbound", "actor": "twilio", "source": "twilio.status"}
PERSON = {"actor_kind": "self_service", "actor": "self-service", "source": "self-service"}
STAFF = {"actor_kind": "staff", "actor": "mia@acme.example", "source": "console"}
TRACKING_OPEN = {"actor_kind": "inbound", "actor": "tracking", "source": "tracking.open"}
TRACKING_CLICK = {"actor_kind": "inbound", "actor": "tracking", "source": "tracking.click"}
BILLING = {"actor_kind": "api_key", "actor": "billing", "source": "api"}
STATUS: dict[str, Any] = {"error_code": None, "answered_by": None}

EXAMPLES: dict[EventType, list[tuple[Event, str]]] = {
    EventType.CONTACT_CREATED: [
        (
            Event("contact.created", changes=changed(kind=(None, "client")), **STAFF),
            "Added as a client in the console",
        ),
        (
            Event(
                "contact.created",
                changes=changed(kind=(None, "employee")),
                actor_kind="api_key",
                source="api.import",
            ),
            "Added as an employee by an import through the API",
        ),
    ],
    EventType.CONTACT_UPDATED: [
        (
            Event(
                "contact.updated",
                changes=changed(
                    email=("a@x.example", "b@x.example"), **{"attributes.plan": (None, "gold")}
                ),
                actor_kind="api_key",
                source="api",
            ),
            "Details changed through the API: e-mail address and attribute ‘plan’",
        ),
        (
            Event(
                "contact.updated",
                changes=changed(owner=(None, "e-9"), teams=([], ["north"])),
                **BILLING,
            ),
            "Details changed through the API: owner and teams",
        ),
        (
            Event(
                "contact.updated",
                reason="owner_erased",
                changes=changed(owner=("(erased)", None)),
                **BILLING,
            ),
            "Owner removed: the owner's record was erased through the API",
        ),
        (
            Event(
                "contact.updated",
                reason="team_deleted",
                changes=changed(teams=(["north"], [])),
                **STAFF,
            ),
            "Removed from a team: the team was deleted in the console",
        ),
    ],
    EventType.SUBSCRIPTION_CHANGED: [
        (
            Event(
                "subscription.changed",
                topic_key="offers",
                changes=changed(
                    status=(None, "subscribed"),
                    channels=(None, ["email", "sms"]),
                    frequency=(None, "immediate"),
                ),
                **STAFF,
            ),
            "Subscribed to Offers by e-mail and SMS in the console",
        ),
        (
            Event(
                "subscription.changed",
                topic_key="offers",
                reason="too many e-mails",
                changes=changed(status=("subscribed", "unsubscribed")),
                **PERSON,
            ),
            "Unsubscribed from Offers on the preferences page: ‘too many e-mails’",
        ),
        (
            Event(
                "subscription.changed",
                topic_key="news",  # a topic not (or no longer) known: its key
                reason="confirmation_sent",
                changes=changed(status=(None, "pending")) | {"evidence": {"ip": "192.0.2.1"}},
                actor_kind="self_service",
                source="self-service.subscribe-form",
            ),
            "Asked to subscribe to news on the subscribe form; a confirmation e-mail was sent",
        ),
        (
            Event(
                "subscription.changed",
                topic_key="offers",
                reason="double_opt_in",
                changes=changed(status=("pending", "subscribed")),
                actor_kind="self_service",
                source="self-service.double-opt-in",
            ),
            "Confirmed the subscription to Offers with the link in the confirmation e-mail",
        ),
        (
            Event(
                "subscription.changed",
                topic_key="offers",
                changes=changed(
                    channels=(["email"], ["sms", "email"]), frequency=("immediate", "daily")
                ),
                **PERSON,
            ),
            "Subscription to Offers changed on the preferences page: by SMS and e-mail, "
            "as a daily digest",
        ),
        (
            Event(
                "subscription.changed",
                topic_key="offers",
                reason="met at the spring fair",  # an import's consent note
                changes=changed(status=("unsubscribed", "subscribed")),
                actor_kind="api_key",
                source="spring-fair",
            ),
            "Subscribed again to Offers: ‘met at the spring fair’",
        ),
    ],
    EventType.PREFERENCES_CHANGED: [
        (
            Event(
                "preferences.changed",
                changes=changed(unsubscribed_all=(False, True)),
                actor_kind="self_service",
                source="self-service.one-click",
            ),
            "Unsubscribed from everything with the one-click unsubscribe link in an e-mail",
        ),
        (
            Event(
                "preferences.changed",
                changes=changed(unsubscribed_all=(False, True)),
                actor_kind="self_service",
                source="self-service.mailto",
            ),
            "Unsubscribed from everything by mail to the unsubscribe address",
        ),
        (
            Event(
                "preferences.changed",
                changes=changed(
                    blocked_channels=(["voice"], ["email", "sms"]),
                    quiet_hours=(None, {"start": "22:00", "end": "07:30"}),
                    digest=(None, {"time": "08:00", "weekday": "monday"}),
                ),
                **STAFF,
            ),
            "Preferences changed in the console: turned off e-mails and SMS; turned calls back "
            "on; quiet hours 22:00–07:30; digests on Mondays at 08:00",
        ),
        (
            Event(
                "preferences.changed",
                changes=changed(quiet_hours=({"start": "22:00", "end": "07:00"}, None)),
                **PERSON,
            ),
            "Quiet hours removed on the preferences page",
        ),
        (
            Event("preferences.changed", changes=changed(tracking_off=(False, True)), **PERSON),
            "Turned tracking of opens and clicks off on the preferences page",
        ),
        (
            Event(
                "preferences.changed",
                changes=changed(tracking_off=(True, False), unsubscribed_all=(True, False)),
                **STAFF,
            ),
            "Preferences changed in the console: no longer unsubscribed from everything; "
            "turned tracking of opens and clicks back on",
        ),
    ],
    EventType.SUPPRESSION_ADDED: [
        (
            Event(
                "suppression.added",
                channel="sms",
                reason="sms_stop",
                changes={"suppression_id": 5, "note": "replied 'STOP'"},
                actor_kind="inbound",
                actor="+447700900123",
                source="twilio.sms",
            ),
            "SMS refused from now on: the person replied STOP",
        ),
        (
            Event(
                "suppression.added",
                channel="email",
                reason="manual",
                changes={"suppression_id": 6, "note": "asked by phone"},
                **STAFF,
            ),
            "E-mail refused from now on: staff suppressed it: ‘asked by phone’",
        ),
        (
            Event(
                "suppression.added",
                channel="email",
                reason="hard_bounce",
                changes=sent(11, code="5.1.1"),
                **DISPATCHER,
            ),
            "E-mail refused from now on: it bounced for good (hard bounce)",
        ),
        (
            Event(
                "suppression.added",
                channel="sms",
                reason="cool_down",
                changes={"suppression_id": 8, "note": "cool-down after sms_stop of 2026-12-01"},
                **STAFF,
            ),
            "SMS refused for a while: a refusal was lifted and a cool-down runs",
        ),
    ],
    EventType.SUPPRESSION_REMOVED: [
        (
            Event(
                "suppression.removed",
                channel="sms",
                reason="sms_stop",
                changes={"suppression_id": 5, "note": None},
                actor_kind="inbound",
                actor="+447700900123",
                source="twilio.sms",
            ),
            "SMS allowed again: the person replied START",
        ),
        (
            Event(
                "suppression.removed",
                channel="email",
                reason="manual",
                changes={"suppression_id": 6, "note": None},
                **STAFF,
            ),
            "E-mail allowed again in the console: the refusal (staff suppressed it) was lifted",
        ),
    ],
    EventType.INBOUND_MESSAGE: [
        (
            Event(
                "inbound.message",
                channel="sms",
                reason="stop",
                changes={"body": "STOP", "provider_id": "SM1"},
                actor_kind="inbound",
                source="twilio.sms",
            ),
            "Replied by SMS: ‘STOP’ (they asked for no more SMS)",
        ),
        (
            Event(
                "inbound.message",
                channel="sms",
                changes={"body": "Is the sale\n still on?", "provider_id": "SM2"},
                actor_kind="inbound",
                source="twilio.sms",
            ),
            "Replied by SMS: ‘Is the sale still on?’",
        ),
    ],
    EventType.DELIVERY_SENT: [
        (
            Event(
                "delivery.sent",
                channel="email",
                topic_key="offers",
                changes=sent(11, provider="smtp", provider_id="<a@b>", attempt=1),
                **DISPATCHER,
            ),
            f"E-mail sent to ada@example.com {SPRING}",
        ),
        (
            Event(
                "delivery.sent",
                channel="sms",
                topic_key="orders",
                changes=sent(12, 4, provider="twilio", provider_id="SM9", attempt=2),
                **DISPATCHER,
            ),
            "SMS sent to +447700900123 for Order updates (notification #4), on attempt 2",
        ),
        (
            Event(
                "delivery.sent",
                channel="voice",
                topic_key="orders",
                changes=sent(12, 4, attempt=1),
                **DISPATCHER,
            ),
            "Call made to +447700900123 for Order updates (notification #4)",
        ),
        (
            Event(
                "delivery.sent",
                channel="email",
                topic_key="offers",
                changes=sent(11, attempt=1, digest={"lead_delivery_id": 11, "items": 3}),
                **DISPATCHER,
            ),
            f"E-mail sent to ada@example.com {SPRING}, in one digest of 3 messages",
        ),
    ],
    EventType.DELIVERY_DELIVERED: [
        (
            Event(
                "delivery.delivered",
                channel="sms",
                topic_key="offers",
                changes=sent(12, provider_id="SM9", status="delivered", **STATUS),
                **TWILIO,
            ),
            f"SMS to +447700900123 delivered {SPRING}; Twilio reported it",
        ),
        (
            Event(
                "delivery.delivered",
                channel="voice",
                topic_key="offers",
                reason="answered_by:machine_start",
                changes=sent(12, status="completed", error_code=None, answered_by="machine_start"),
                **TWILIO,
            ),
            f"Call to +447700900123 answered {SPRING}: answered by machine start, not a person; "
            "Twilio reported it",
        ),
    ],
    EventType.DELIVERY_BOUNCED: [
        (
            Event(
                "delivery.bounced",
                channel="email",
                topic_key="offers",
                reason="hard_bounce",
                changes=sent(11, status="5.1.1", detail="550 5.1.1 user unknown"),
                actor_kind="inbound",
                actor="mail-system",
                source="email.bounce",
            ),
            f"E-mail to ada@example.com bounced for good (hard bounce) {SPRING}: "
            "550 5.1.1 user unknown",
        ),
        (
            Event(
                "delivery.bounced",
                channel="email",
                topic_key="offers",
                reason="complaint",
                changes=sent(11, status=None, detail=None),
                actor_kind="inbound",
                source="email.bounce",
            ),
            f"E-mail to ada@example.com was marked as spam (a complaint) {SPRING}",
        ),
        (
            Event(
                "delivery.bounced",
                channel="email",
                topic_key="offers",
                reason="blocked",
                changes=sent(11, status="5.7.1", detail="550 5.7.1 message refused as spam"),
                actor_kind="inbound",
                source="email.bounce",
            ),
            "E-mail to ada@example.com was blocked by the receiving server as spam or by "
            f"policy {SPRING}: 550 5.7.1 message refused as spam",
        ),
        (
            Event(
                "delivery.bounced",
                channel="email",
                topic_key="offers",
                reason="soft_bounce",
                changes=sent(
                    11,
                    status="5.2.2",
                    detail="552 5.2.2 over quota",
                    action="failed",
                    failed=True,
                    cause="mailbox_full",
                    counted=True,
                ),
                actor_kind="inbound",
                source="email.bounce",
            ),
            "E-mail to ada@example.com could not be delivered (soft bounce: the mailbox is full) "
            f"{SPRING}: 552 5.2.2 over quota",
        ),
        (
            Event(
                "delivery.bounced",
                channel="email",
                topic_key="offers",
                reason="soft_bounce",
                changes=sent(
                    11, status="4.4.7", action="failed", failed=True, cause="expired", counted=False
                ),
                actor_kind="inbound",
                source="email.bounce",
            ),
            "E-mail to ada@example.com could not be delivered (soft bounce: a relay gave up after "
            f"retrying) {SPRING}: 4.4.7; not counted again: a soft bounce of this address "
            "counted today already",
        ),
    ],
    EventType.DELIVERY_FAILED: [
        (
            Event(
                "delivery.failed",
                channel="email",
                topic_key="offers",
                reason="rejected",
                changes=sent(
                    11, provider="smtp", error="554 message refused", code="554", attempt=1
                ),
                **DISPATCHER,
            ),
            f"E-mail to ada@example.com failed {SPRING}: the provider refused this message "
            "(554 message refused)",
        ),
        (
            Event(
                "delivery.failed",
                channel="sms",
                topic_key="offers",
                reason="twilio:undelivered",
                changes=sent(
                    12,
                    provider_id="SM9",
                    status="undelivered",
                    error_code="30003",
                    answered_by=None,
                ),
                **TWILIO,
            ),
            f"SMS to +447700900123 failed {SPRING}: Twilio reported it: undelivered (30003)",
        ),
        (
            Event(
                "delivery.failed",
                channel="webhook",
                topic_key="orders",
                reason="gave_up",
                changes=sent(14, 4, error="503 Service Unavailable", code="503", attempt=5),
                **DISPATCHER,
            ),
            "Webhook to https://crm.example/h failed for Order updates (notification #4): it kept "
            "failing for a passing reason; Hub gave up after its retries (503 Service "
            "Unavailable), on attempt 5",
        ),
    ],
    EventType.DELIVERY_RETRYING: [
        (
            Event(
                "delivery.retrying",
                channel="email",
                topic_key="offers",
                changes=sent(
                    11,
                    error="421 try later",
                    code="421",
                    retry_at="2026-12-07T06:05:00+00:00",
                    attempt=1,
                ),
                **DISPATCHER,
            ),
            f"E-mail to ada@example.com not sent yet {SPRING}: 421 try later; Hub tries again "
            "at 06:05 UTC, 7 Dec",
        ),
        (
            Event(
                "delivery.retrying",
                channel="sms",
                topic_key="offers",
                changes=sent(
                    12,
                    error="paused",
                    code=None,
                    retry_at="2026-12-07T07:00:00+00:00",
                    channel_paused=True,
                    attempt=1,
                ),
                **DISPATCHER,
            ),
            f"SMS to +447700900123 not sent yet {SPRING}: the channel is paused; Hub tries again "
            "at 07:00 UTC, 7 Dec",
        ),
    ],
    EventType.DELIVERY_UNKNOWN: [
        (
            Event(
                "delivery.unknown",
                channel="sms",
                topic_key="offers",
                reason="worker_lost",
                changes=sent(12, attempt=1, resending=False),
                **DISPATCHER,
            ),
            f"SMS to +447700900123 may or may not have gone {SPRING}: the worker stopped while "
            "sending, on a channel not safe to resend",
        ),
        (
            Event(
                "delivery.unknown",
                channel="email",
                topic_key="offers",
                reason="worker_lost",
                changes=sent(11, attempt=1, resending=True),
                **DISPATCHER,
            ),
            f"E-mail to ada@example.com may or may not have gone {SPRING}: the worker stopped "
            "while sending; Hub sends it again under the same key",
        ),
        (
            Event(
                "delivery.unknown",
                channel="sms",
                topic_key="offers",
                changes=sent(
                    12,
                    error="read timeout",
                    code=None,
                    retry_at="2026-12-07T06:10:00+00:00",
                    attempt=1,
                ),
                **DISPATCHER,
            ),
            f"SMS to +447700900123 may or may not have gone {SPRING}: read timeout; Hub tries "
            "again at 06:10 UTC, 7 Dec",
        ),
    ],
    EventType.DELIVERY_REFUSED: [
        (
            Event(
                "delivery.refused",
                channel="sms",
                topic_key="offers",
                reason="suppressed:sms_stop",
                changes=sent(12),
                **DISPATCHER,
            ),
            f"SMS to +447700900123 refused {SPRING}: the address is suppressed: the person "
            "replied STOP",
        ),
        (
            Event(
                "delivery.refused",
                channel="voice",
                topic_key="offers",
                reason="no_address",
                changes=sent(13),
                **DISPATCHER,
            ),
            f"Call refused {SPRING}: no address for this channel",
        ),
    ],
    EventType.DELIVERY_OPENED: [
        (
            Event(
                "delivery.opened",
                channel="email",
                topic_key="offers",
                changes=sent(11, agent="mobile", machine=False),
                **TRACKING_OPEN,
            ),
            f"E-mail opened {SPRING} (mobile)",
        ),
        (
            Event(
                "delivery.opened",
                channel="email",
                topic_key="offers",
                reason="privacy_proxy",
                changes=sent(11, agent="privacy_proxy", machine=True),
                **TRACKING_OPEN,
            ),
            f"E-mail opened {SPRING} (by a machine: a privacy proxy, which fetches every image, "
            "read or not; not counted as the person's)",
        ),
    ],
    EventType.DELIVERY_CLICKED: [
        (
            Event(
                "delivery.clicked",
                channel="email",
                topic_key="offers",
                changes=sent(
                    11, agent="browser", machine=False, link="https://a.example/x", link_index=1
                ),
                **TRACKING_CLICK,
            ),
            f"E-mail link followed {SPRING}: https://a.example/x (browser)",
        ),
    ],
    EventType.DELIVERY_DEFERRED: [
        (
            Event(
                "delivery.deferred",
                channel="sms",
                topic_key="offers",
                reason="legal_window",
                changes=sent(12, until="2026-12-07T07:00:00+00:00"),
                **DISPATCHER,
            ),
            f"SMS to +447700900123 held back {SPRING}: it waits for the legal window for "
            "marketing SMS and calls (08:00–21:00 in each person's time zone), until 08:00 "
            "Europe/Berlin, 7 Dec",
        ),
        (
            Event(
                "delivery.deferred",
                channel="email",
                topic_key="offers",
                reason="throttled",
                changes=sent(11, until="2026-12-07T06:02:00+00:00"),
                **DISPATCHER,
            ),
            f"E-mail to ada@example.com held back {SPRING}: it waits for their turn under the "
            "campaign's throttle (messages a minute), until 06:02 UTC, 7 Dec",
        ),
        (
            Event(
                "delivery.deferred",
                channel="email",
                topic_key="offers",
                reason="paused",
                changes=sent(11, until="2026-12-07T06:02:00+00:00"),
                **DISPATCHER,
            ),
            f"E-mail to ada@example.com held back {SPRING}: it waits for the campaign to be "
            "resumed (it is paused)",
        ),
    ],
    EventType.NOTIFICATION_SCHEDULED: [
        (
            Event(
                "notification.scheduled",
                topic_key="orders",
                changes={"notification": 12, "send_at": "2026-12-24T08:00:00+00:00"},
                **BILLING,
            ),
            "Notification #12 (Order updates) scheduled for 09:00 Europe/Berlin, 24 Dec, by "
            "API key ‘billing’",
        ),
        (
            Event(
                "notification.scheduled",
                changes={"notification": 12, "send_at": "2027-01-05T08:00:00+00:00"},
                **BILLING,
            ),
            "Notification #12 scheduled for 09:00 Europe/Berlin, 5 Jan 2027, by API key ‘billing’",
        ),
    ],
    EventType.NOTIFICATION_CANCELLED: [
        (
            Event(
                "notification.cancelled",
                topic_key="orders",
                changes={"notification": 12},
                **BILLING,
            ),
            "Notification #12 (Order updates) cancelled by API key ‘billing’ before it was sent",
        ),
        (
            Event("notification.cancelled", changes={"notification": 12}, **STAFF),
            "Notification #12 cancelled by mia@acme.example in the console before it was sent",
        ),
    ],
    EventType.REFUSAL_REASON: [
        (
            Event(
                "refusal.reason",
                topic_key="offers",
                reason="too_many",
                changes={"topic": "offers", "note": "I get three a day"},
                **PERSON,
            ),
            "Said why they unsubscribed from Offers: too many messages — ‘I get three a day’",
        ),
        (
            Event(
                "refusal.reason",
                reason="never_signed_up",
                changes={"topic": None, "note": None},
                **PERSON,
            ),
            "Said why they unsubscribed from everything: they never signed up",
        ),
    ],
    EventType.CLIENT_ASSIGNED: [
        (
            Event(
                "client.assigned",
                changes={"client": "c-42", "owner": {"before": False, "after": True}},
                **BILLING,
            ),
            "Became the owner of client ‘c-42’ by API key ‘billing’",
        ),
        (
            Event(
                "client.assigned",
                changes={"client": "c-42", "owner": {"before": True, "after": False}, "now": "e-9"},
                **STAFF,
            ),
            "No longer the owner of client ‘c-42’ (now ‘e-9’) in the console by mia@acme.example",
        ),
        (
            Event(
                "client.assigned",
                changes={"client": "c-42", "owner": {"before": True, "after": False}, "now": None},
                actor_kind="api_key",
                actor="crm",
                source="api.import",
            ),
            "No longer the owner of client ‘c-42’ (now no one) in an import by API key ‘crm’",
        ),
        (
            Event(
                "client.assigned",
                reason="client_erased",
                changes={"client": None, "owner": {"before": True, "after": False}},
                **BILLING,
            ),
            "No longer the owner of a client: the client was erased",
        ),
    ],
}
CASES = [
    pytest.param(e, said, id=f"{e.kind}-{i}")
    for k in EXAMPLES
    for i, (e, said) in enumerate(EXAMPLES[k])
]


def test_every_kind_has_words() -> None:
    """A kind added to EventType needs words in hub/services/timeline_words.py."""
    assert sorted(set(EventType) - WORDED) == []


def test_every_kind_has_an_example_here() -> None:
    """... and an example above, in the shape its writer stores, so the words are seen."""
    assert sorted(set(EventType) - set(EXAMPLES)) == []
    assert all(e.kind == kind.value for kind, cases in EXAMPLES.items() for e, _ in cases)


@pytest.mark.parametrize(("event", "words"), CASES)
def test_each_kind_reads_as_a_sentence(event: Event, words: str) -> None:
    said = sentence(event, KNOWN)
    assert said is not None
    assert plain(said) == words
    assert event.kind not in plain(said)  # the code is beside the sentence, not in it


def test_ids_are_links_to_their_pages() -> None:
    event, _ = EXAMPLES[EventType.DELIVERY_SENT][0]
    said = sentence(event, KNOWN)
    assert said is not None
    assert [p for p in said if isinstance(p, Ref)] == [
        Ref(RefKind.CAMPAIGN, "7", "Spring offer"),
        Ref(RefKind.NOTIFICATION, "3", "#3"),
    ]
    changed_subscription, _ = EXAMPLES[EventType.SUBSCRIPTION_CHANGED][0]
    said = sentence(changed_subscription, KNOWN)
    assert said is not None
    assert [p for p in said if isinstance(p, Ref)] == [Ref(RefKind.TOPIC, "offers", "Offers")]


def test_an_assignment_links_the_client_to_their_page() -> None:
    """The console links a Ref of kind CONTACT to /console/contacts/{external_id}; the text
    stays the id inside the quotation marks."""
    became, lost, to_no_one, erased = (e for e, _ in EXAMPLES[EventType.CLIENT_ASSIGNED])
    refs = {
        name: [p for p in sentence(event, KNOWN) or () if isinstance(p, Ref)]
        for name, event in (("became", became), ("lost", lost), ("none", to_no_one))
    }
    assert refs == {
        "became": [Ref(RefKind.CONTACT, "c-42", "c-42")],
        "lost": [Ref(RefKind.CONTACT, "c-42", "c-42")],  # not the new owner: see the words
        "none": [Ref(RefKind.CONTACT, "c-42", "c-42")],
    }
    assert not [p for p in sentence(erased, KNOWN) or () if isinstance(p, Ref)]
    long_id = "c-" + "9" * 300
    event = Event(
        "client.assigned",
        changes={"client": long_id, "owner": {"before": False, "after": True}},
        **STAFF,
    )
    said = sentence(event, KNOWN) or ()
    (ref,) = [p for p in said if isinstance(p, Ref)]
    assert ref.key == long_id  # the link leads to the whole id ...
    assert len(ref.text) == MAX_QUOTED  # ... the words show it cut, as every quotation is
    assert (
        plain(said) == f"Became the owner of client ‘{ref.text}’ in the console by mia@acme.example"
    )


def test_what_is_not_known_is_left_out_not_guessed() -> None:
    """A notification not read (or gone) is still named by its number; an unknown address
    and topic name are not invented."""
    event = Event("delivery.sent", channel="email", topic_key="misc", changes=sent(99, 42))
    said = sentence(event, Known(now=NOW))
    assert said is not None
    assert plain(said) == "E-mail sent for misc (notification #42)"
    campaign_without_name = Known(now=NOW, notifications={42: Sending(campaign_id=5)})
    said = sentence(event, campaign_without_name)
    assert said is not None
    assert plain(said) == "E-mail sent for campaign ‘#5’ (notification #42)"


def test_a_kind_without_words_falls_back_to_the_kind_and_its_fields() -> None:
    event = Event("delivery.forwarded", channel="email", topic_key="offers", reason="machine")
    assert sentence(event, KNOWN) is None
    assert plain(fallback(event)) == "delivery.forwarded · email · offers: machine"
    assert plain(fallback(Event("something.new"))) == "something.new"


def test_details_are_rows_with_changes_as_before_and_after() -> None:
    event, _ = EXAMPLES[EventType.SUBSCRIPTION_CHANGED][0]
    rows = [(name, plain(value)) for name, value in details(event, KNOWN)]
    assert rows == [
        ("status", "— → subscribed"),
        ("channels", "— → email, sms"),
        ("frequency", "— → immediate"),
    ]
    sent_event, _ = EXAMPLES[EventType.DELIVERY_FAILED][0]
    failed = dict(details(sent_event, KNOWN))
    assert failed["notification_id"] == (Ref(RefKind.NOTIFICATION, "3", "#3"),)
    assert failed["template"] == (Ref(RefKind.TEMPLATE, "offer", "offer, version 2"),)
    assert plain(failed["reason"]) == "rejected"
    assert plain(failed["error"]) == "554 message refused"


def test_a_notifications_own_event_links_it_in_words_and_details() -> None:
    event, _ = EXAMPLES[EventType.NOTIFICATION_CANCELLED][0]
    said = sentence(event, KNOWN)
    assert said is not None
    assert [p for p in said if isinstance(p, Ref)] == [
        Ref(RefKind.NOTIFICATION, "12", "#12"),
        Ref(RefKind.TOPIC, "orders", "Order updates"),
    ]
    assert dict(details(event, KNOWN))["notification"] == (Ref(RefKind.NOTIFICATION, "12", "#12"),)


def test_details_of_a_large_change_are_cut_and_counted() -> None:
    many = {f"attributes.a{i:02}": {"before": None, "after": i} for i in range(30)}
    rows = details(Event("contact.created", changes=many), KNOWN)
    assert len(rows) == MAX_DETAILS
    assert plain(rows[-1][1]) == f"and {30 - MAX_DETAILS + 1} more (the API's timeline has all)"
    odd = details(Event("contact.updated", changes=["not", "an", "object"]), KNOWN)
    assert odd == [("data", ("not, an, object",))]


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    ["delivery_id", "notification_id", "notification", "send_at", "status", "channels",
     "frequency", "blocked_channels", "quiet_hours", "digest", "unsubscribed_all", "kind",
     "until", "retry_at", "attempt", "digest", "body", "note", "error", "code", "detail",
     "resending", "channel_paused"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(sorted(WORDED)),
    channel=st.none() | st.sampled_from(["email", "sms", "voice", "webhook", "fax"]),
    reason=st.none() | st.text(max_size=30),
    changes=JSON | st.dictionaries(FIELDS, JSON, max_size=6),
    topic_key=st.none() | st.sampled_from(["offers", "gone"]),
    source=st.sampled_from(["console", "self-service", "twilio.status", "dispatch", "x"]),
)
def test_odd_stored_data_never_raises(
    kind: str,
    channel: str | None,
    reason: str | None,
    changes: Any,
    topic_key: str | None,
    source: str,
) -> None:
    event = Event(
        kind, channel=channel, topic_key=topic_key, reason=reason, changes=changes, source=source
    )
    said = sentence(event, KNOWN)
    assert said is not None
    assert plain(said).strip()
    assert all(isinstance(name, str) for name, _ in details(event, KNOWN))
