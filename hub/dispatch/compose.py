"""Turn claimed deliveries into rendered messages, re-checking each person's choices first.

Fan-out decided who gets what; by the time a worker sends, the person may have said STOP or
unsubscribed. So every batch re-resolves with fresh rows (four queries per batch) and holds
back what is no longer wanted: a refusal takes effect before the next send.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from channels.base import OutgoingMessage, PermanentDeliveryError
from hub.db.models import Notification, Topic
from hub.dispatch import audience, escalation
from hub.dispatch.claim import Claimed
from hub.dispatch.outcomes import Held, Result
from hub.domain import Channel, DeferralReason, DeliveryState, Frequency, RefusalReason
from hub.services.hashing import AddressHasher
from hub.services.templates import doc as template_doc
from preferences.model import Caps, Resolution, TopicView
from preferences.resolver import resolve
from preferences.tokens import LinkSigner, Purpose
from templates import CompiledTemplate, Links, Renderer, TemplateError


@dataclass(frozen=True, slots=True)
class Outgoing:
    delivery: Claimed
    topic_key: str
    message: OutgoingMessage


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What a batch needs of its notification, detached from any session."""

    notification_id: int
    data: dict[str, Any]
    topic_id: int
    topic_key: str
    topic_name: str
    required: bool
    topic: TopicView
    template: CompiledTemplate
    escalates: bool = False


@dataclass(frozen=True, slots=True)
class Composed:
    outgoing: list[Outgoing]
    held: list[Held]
    failed: list[Result]  # could not render: permanent for this message


VOICE_OPT_OUT = {
    "en": "To stop these calls, press 9.",
    "ru": "Чтобы больше не получать эти звонки, нажмите 9.",
}
# Per notification: its deliveries, their people, and who an earlier step already reached.
Loaded = list[tuple["_Prepared", list[Claimed], dict[int, audience.Recipient], set[int]]]


def contact_context(
    *,
    external_id: str,
    name: str | None,
    locale: str | None,
    timezone: str,
    attributes: dict[str, Any],
) -> dict[str, Any]:
    """What a template sees as `contact`: the same for a send and for a preview."""
    return {
        "external_id": external_id,
        "name": name,
        "locale": locale,
        "timezone": timezone,
        "attributes": attributes,
    }


def renderable(template: CompiledTemplate) -> frozenset[Channel]:
    # A webhook without its own part carries the notification's data as a default document.
    return template.channels() | {Channel.WEBHOOK}


class Composer:
    def __init__(
        self,
        *,
        renderer: Renderer,
        links: LinkSigner,
        hasher: AddressHasher,
        public_url: str,
        unsubscribe_mailto: str | None = None,
        voice_opt_out: dict[str, str] | None = None,
        cache_size: int = 64,
        caps: Caps = audience.NO_CAPS,
    ) -> None:
        self.renderer = renderer
        self.links = links
        self.caps = caps
        self.hasher = hasher
        self.public_url = public_url.rstrip("/")
        self.unsubscribe_mailto = unsubscribe_mailto
        self._voice_opt_out = voice_opt_out or VOICE_OPT_OUT
        self._cache: OrderedDict[int, _Prepared] = OrderedDict()
        self._lock = threading.Lock()  # worker threads share the cache
        self._cache_size = cache_size

    def voice_opt_out(self, locale: str | None) -> str:
        """The "press 9" prompt in the contact's language: ru-RU, then ru, then en."""
        tag = (locale or "").lower()
        for candidate in (tag, tag.split("-")[0], "en"):
            if candidate in self._voice_opt_out:
                return self._voice_opt_out[candidate]
        return next(iter(self._voice_opt_out.values()))

    def compiled(self, notification: Notification) -> CompiledTemplate:
        """Compiled once per notification per process; a notification's template is frozen."""
        return self._prepared(notification).template

    def load(self, session: Session, claimed: Sequence[Claimed], now: dt.datetime) -> Loaded:
        """The reads: each notification's frozen parts and the people, as they are now."""
        loaded: Loaded = []
        by_notification: dict[int, list[Claimed]] = {}
        for delivery in claimed:
            by_notification.setdefault(delivery.notification_id, []).append(delivery)
        for notification_id, deliveries in by_notification.items():
            with self._lock:
                prepared = self._cache.get(notification_id)
            if prepared is None:
                prepared = self._prepared(session.get_one(Notification, notification_id))
            recipients = {
                r.id: r
                for r in audience.load(
                    session,
                    prepared.topic_id,
                    sorted({d.contact_id for d in deliveries}),
                    hasher=self.hasher,
                    now=now,
                    count_for=audience.counts_for(prepared.topic, notification_id),
                )
            }
            reached = (
                escalation.confirmed(session, notification_id, recipients)
                if prepared.escalates
                else set()
            )
            loaded.append((prepared, deliveries, recipients, reached))
        return loaded

    def compose(self, loaded: Loaded, now: dt.datetime) -> Composed:
        """Re-check and render, outside any transaction (it is CPU work, no reads)."""
        result = Composed([], [], [])
        for prepared, deliveries, recipients, reached in loaded:
            for delivery in deliveries:
                recipient = recipients.get(delivery.contact_id)
                if delivery.contact_id in reached:
                    stopped = escalation.CHAIN_STOPPED
                    result.held.append(
                        Held(delivery, prepared.topic_key, DeliveryState.SUPPRESSED, stopped)
                    )
                    continue
                if recipient is None:
                    result.held.append(
                        Held(
                            delivery, prepared.topic_key, DeliveryState.SUPPRESSED, "contact_erased"
                        )
                    )
                    continue
                subscription = recipient.subscription
                if subscription is not None and delivery.reason == DeferralReason.DIGEST:
                    # It waited for its digest time, which has come: the other rules stand.
                    subscription = replace(subscription, frequency=Frequency.IMMEDIATE)
                resolution = resolve(
                    contact=recipient.view,
                    topic=prepared.topic,
                    subscription=subscription,
                    preferences=recipient.preferences,
                    suppressions=recipient.suppressions,
                    moment=now,
                    history=recipient.history,
                )
                if delivery.channel in resolution.send_now:
                    self._render(result, prepared, delivery, recipient)
                else:
                    result.held.append(_held(prepared.topic_key, delivery, resolution))
        return result

    def _prepared(self, notification: Notification) -> _Prepared:
        with self._lock:
            hit = self._cache.get(notification.id)
            if hit is not None:
                self._cache.move_to_end(notification.id)
                return hit
        doc = template_doc(
            notification.template_key or f"notification-{notification.id}", notification.variants
        )
        topic = _session_of(notification).get_one(Topic, notification.topic_id)
        prepared = _Prepared(
            notification_id=notification.id,
            data=notification.data,
            topic_id=topic.id,
            topic_key=topic.key,
            topic_name=topic.name,
            required=topic.required,
            topic=audience.topic_view(topic, self.caps),
            template=self.renderer.compile(doc),
            escalates=bool(notification.escalation),
        )
        with self._lock:
            self._cache[notification.id] = prepared
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return prepared

    def _render(
        self,
        result: Composed,
        prepared: _Prepared,
        delivery: Claimed,
        recipient: audience.Recipient,
    ) -> None:
        channel = delivery.channel
        address = recipient.view.addresses.get(channel) or delivery.address or ""
        preferences_token = self.links.sign(Purpose.PREFERENCES, recipient.id)
        unsubscribe_token = self.links.sign(Purpose.UNSUBSCRIBE, recipient.id, prepared.topic_key)
        links = Links(
            preferences_url=f"{self.public_url}/preferences/{preferences_token}",
            unsubscribe_url=f"{self.public_url}/unsubscribe/{unsubscribe_token}",
        )
        contact = contact_context(
            external_id=recipient.external_id,
            name=recipient.name,
            locale=recipient.locale,
            timezone=recipient.view.timezone,
            attributes=recipient.attributes,
        )
        context = {
            "contact": contact,
            "topic": {"key": prepared.topic_key, "name": prepared.topic_name},
            "data": prepared.data,
        }
        key = f"hub-{prepared.notification_id}-{delivery.id}"
        try:
            rendered_body: bytes | None
            if channel is Channel.WEBHOOK and channel not in prepared.template.channels():
                rendered_body = _default_document(key, prepared, contact)
                rendered = None
            else:
                rendered = prepared.template.render(
                    channel, locale=recipient.locale, context=context, links=links
                )
                rendered_body = rendered.body
        except TemplateError as exc:
            error = PermanentDeliveryError(f"template: {exc}", code="template")
            result.failed.append(Result(delivery, prepared.topic_key, "render", error))
            return
        marketing = not prepared.required
        mailto = None
        if marketing and self.unsubscribe_mailto:
            mailto = f"mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{unsubscribe_token}"
        message = OutgoingMessage(
            delivery_id=delivery.id,
            channel=channel,
            key=key,
            to=address,
            to_name=recipient.name,
            locale=recipient.locale,
            subject=rendered.subject if rendered else None,
            text=rendered.text if rendered else None,
            html=rendered.html if rendered else None,
            body=rendered_body,
            unsubscribe_url=links.unsubscribe_url
            if marketing and channel is Channel.EMAIL
            else None,
            unsubscribe_mailto=mailto if channel is Channel.EMAIL else None,
            callback_url=(
                f"{self.public_url}/inbound/twilio/status"
                if channel in (Channel.SMS, Channel.VOICE)
                else None
            ),
            keypress_url=(
                f"{self.public_url}/inbound/twilio/voice" if channel is Channel.VOICE else None
            ),
            opt_out_prompt=(
                self.voice_opt_out(recipient.locale) if channel is Channel.VOICE else None
            ),
        )
        result.outgoing.append(Outgoing(delivery, prepared.topic_key, message))


def _held(topic_key: str, delivery: Claimed, resolution: Resolution) -> Held:
    """Why a claimed delivery may not go now: deferred until a time, or refused."""
    for deferral in resolution.deferred:
        if deferral.channel is delivery.channel:
            return Held(
                delivery, topic_key, DeliveryState.DEFERRED, deferral.reason, until=deferral.until
            )
    reason = next(
        (
            f"{r.reason}:{r.detail}" if r.detail else str(r.reason)
            for r in resolution.refused
            if r.channel is delivery.channel
        ),
        RefusalReason.NOT_SUBSCRIBED.value,
    )
    return Held(delivery, topic_key, DeliveryState.SUPPRESSED, reason[:64])


def _default_document(key: str, prepared: _Prepared, contact: dict[str, Any]) -> bytes:
    document = {
        "id": key,
        "type": "notification",
        "notification_id": prepared.notification_id,
        "topic": prepared.topic_key,
        "contact": {"external_id": contact["external_id"]},
        "data": prepared.data,
    }
    return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()


def _session_of(notification: Notification) -> Session:
    from sqlalchemy.orm import object_session

    session = object_session(notification)
    if session is None:
        raise RuntimeError("notification is detached from its session")
    return session
