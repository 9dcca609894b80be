"""A person with a varied timeline, one event or more of every kind, for the timeline page's
tests and screenshots. What the public API and the services can write is written through
them (the contact, their subscriptions and preferences, an unsubscribe with a reason, STOP
and START by SMS); the dispatcher's delivery events are appended with `timeline.event_row`
in the shapes hub/dispatch writes, against real delivery rows of a real campaign."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from hub.channels.base import InboundText
from hub.db.base import utcnow
from hub.db.models import Contact, Delivery, Topic
from hub.domain import ActorKind, Channel, EventType, SubscriptionStatus
from hub.runtime import Runtime
from hub.schemas.subscriptions import SubscriptionIn
from hub.services import inbound, subscriptions, timeline, topics
from hub.services.actor import SELF_SERVICE_SOURCE, Actor
from tests import reporting
from tests.dispatching import ok, person, topic

PHONE = "+4915123456789"
EMAIL = "ada.lovelace@example.com"
DISPATCHER = Actor(kind=ActorKind.SYSTEM, name="dispatcher", source="dispatch")
TWILIO = Actor(kind=ActorKind.INBOUND, name="twilio", source="twilio.status")
MAIL_SYSTEM = Actor(kind=ActorKind.INBOUND, name="mail-system", source="email.bounce")
TRACKING_OPEN = Actor(kind=ActorKind.INBOUND, name="tracking", source="tracking.open")
TRACKING_CLICK = Actor(kind=ActorKind.INBOUND, name="tracking", source="tracking.click")
PERSON = Actor(
    kind=ActorKind.SELF_SERVICE,
    name="self-service",
    source=SELF_SERVICE_SOURCE,
    ip="192.0.2.7",
    user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)",
)


@dataclass(frozen=True)
class Varied:
    external_id: str
    contact_id: int
    campaign_id: int
    notification_id: int  # the campaign's
    receipt_id: int  # a transactional notification, sent by a service (no campaign)
    deliveries: dict[str, int]  # "<notification>.<channel>": delivery id


def varied(api: TestClient, auth: dict[str, str], runtime: Runtime) -> Varied:
    """Ada Lovelace (`ada`, Europe/Berlin) and her timeline; what the ids are."""
    topic(api, auth, "offers", name="Offers", category="marketing")
    topic(api, auth, "orders", name="Order updates")
    person(
        api,
        auth,
        "ada",
        name="Ada Lovelace",
        email=EMAIL,
        phone=PHONE,
        timezone="Europe/Berlin",
        subscribe={"offers": ["email", "sms"], "orders": ["email"]},
    )
    ok(api.patch("/v1/contacts/ada", json={"attributes": {"plan": "gold"}}, headers=auth))
    person(api, auth, "bob", name="Bob Stone")  # the client Ada's timeline says she took on
    preferences = {"quiet_hours": {"start": "22:00", "end": "07:30"}, "blocked_channels": ["voice"]}
    ok(api.patch("/v1/contacts/ada/preferences", json=preferences, headers=auth))
    now = utcnow()
    with runtime.engine.begin() as db:
        contact_id = db.execute(select(Contact.id).where(Contact.external_id == "ada")).scalar_one()
        offers, orders = (
            db.execute(select(Topic.id).where(Topic.key == key)).scalar_one()
            for key in ("offers", "orders")
        )
        reporting.template(db, "offer", now=now, version=2)
        reporting.template(db, "receipt", now=now)
        campaign_id, notification_id = reporting.campaign(
            db, topic_id=offers, name="Spring offer", now=now, template_version=2
        )
        receipt_id = reporting.notification(
            db, topic_id=orders, now=now, template_key="receipt", template_version=1
        )
        rows = [
            (notification_id, "email", EMAIL, "bounced"),
            (notification_id, "sms", PHONE, "unknown"),
            (notification_id, "voice", PHONE, "suppressed"),
            (receipt_id, "email", EMAIL, "failed"),
            (receipt_id, "sms", PHONE, "delivered"),
        ]
        ids = {
            f"{n}.{channel}": db.execute(
                insert(Delivery).returning(Delivery.id),
                [{"notification_id": n, "contact_id": contact_id, "channel": channel,
                  "state": state, "address": address, "attempts": 1, "step": 0,
                  "ambiguous": False, "created_at": now, "updated_at": now}],
            ).scalar_one()
            for n, channel, address, state in rows
        }  # fmt: skip

    def delivery(
        kind: EventType,
        key: str,
        actor: Actor = DISPATCHER,
        reason: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        n, channel = key.split(".")
        return timeline.event_row(
            contact_id=contact_id,
            type=kind,
            actor=actor,
            topic_key="offers" if int(n) == notification_id else "orders",
            channel=Channel(channel),
            reason=reason,
            changes={"delivery_id": ids[key], "notification_id": int(n), **extra},
        )

    campaign_email, campaign_sms = f"{notification_id}.email", f"{notification_id}.sms"
    receipt_email, receipt_sms = f"{receipt_id}.email", f"{receipt_id}.sms"
    later = (now + dt.timedelta(hours=2)).isoformat()
    with runtime.sessions() as session:
        timeline.record_many(
            session,
            [
                delivery(
                    EventType.DELIVERY_REFUSED,
                    f"{notification_id}.voice",
                    reason="channel_blocked",
                ),
                delivery(EventType.DELIVERY_DEFERRED, campaign_sms, reason="legal_window",
                         until=later),
                delivery(EventType.DELIVERY_SENT, campaign_email, provider="smtp",
                         provider_id="<1@acme.example>", attempt=1),
                delivery(EventType.DELIVERY_RETRYING, receipt_email, provider="smtp",
                         error="421 4.7.0 try again later", code="421", retry_at=later,
                         attempt=1),
                delivery(EventType.DELIVERY_FAILED, receipt_email, reason="rejected",
                         provider="smtp", error="554 5.7.1 message refused", code="554",
                         attempt=2),
                delivery(EventType.DELIVERY_SENT, receipt_sms, provider="twilio",
                         provider_id="SM100", attempt=1),
                delivery(EventType.DELIVERY_DELIVERED, receipt_sms, TWILIO, provider_id="SM100",
                         status="delivered", error_code=None, answered_by=None),
                delivery(EventType.DELIVERY_OPENED, campaign_email, TRACKING_OPEN,
                         agent="mobile", machine=False),
                delivery(EventType.DELIVERY_CLICKED, campaign_email, TRACKING_CLICK,
                         reason="all_links", agent="link_scanner", machine=True,
                         link="https://shop.example.com/spring", link_index=1),
                delivery(EventType.DELIVERY_BOUNCED, campaign_email, MAIL_SYSTEM,
                         reason="hard_bounce", status="5.1.1",
                         detail="550 5.1.1 <ada.lovelace@example.com>: user unknown"),
            ],
        )  # fmt: skip
        inbound.receive(
            session, InboundText("twilio", PHONE, "STOP", "SM-stop"), hasher=runtime.hasher
        )
        inbound.receive(
            session, InboundText("twilio", PHONE, "start", "SM-start"), hasher=runtime.hasher
        )
        timeline.record_many(
            session,
            [
                delivery(
                    EventType.DELIVERY_UNKNOWN,
                    campaign_sms,
                    reason="worker_lost",
                    attempt=1,
                    resending=False,
                )
            ],
        )
        contact = session.get(Contact, contact_id)
        assert contact is not None
        subscriptions.put(
            session,
            contact,
            topics.get(session, "offers"),
            SubscriptionIn(status=SubscriptionStatus.UNSUBSCRIBED),
            PERSON,
            note="too many e-mails",
        )
        # Why she left (her answer on the page after it), and, as if she also looked after a
        # client, the employee's side of an owner change: every kind of event on one page.
        timeline.record_many(
            session,
            [
                timeline.event_row(
                    contact_id=contact_id,
                    type=EventType.REFUSAL_REASON,
                    actor=PERSON,
                    topic_key="offers",
                    reason="too_many",
                    changes={"topic": "offers", "note": "three a day"},
                ),
                timeline.event_row(
                    contact_id=contact_id,
                    type=EventType.CLIENT_ASSIGNED,
                    actor=PERSON,
                    changes={"client": "bob", "owner": {"before": False, "after": True}},
                ),
            ],
        )
        session.commit()
    # scheduled for tomorrow, then cancelled: both on her timeline
    soon = {
        "topic": "orders",
        "content": {"": {"email_subject": "Soon", "email_text": "Soon."}},
        "recipients": ["ada"],
        "send_at": (utcnow() + dt.timedelta(days=1)).isoformat(),
    }
    later_one = ok(api.post("/v1/notifications", json=soon, headers=auth), 202)
    ok(api.post(f"/v1/notifications/{later_one['id']}/cancel", headers=auth))
    return Varied("ada", contact_id, campaign_id, notification_id, receipt_id, ids)
