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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from hub.channels.base import CallbackPaths, OutgoingMessage, PermanentDeliveryError
from hub.db.models import Campaign, Contact, Notification, Topic
from hub.dispatch import audience, digest, escalation, voice_prompt
from hub.dispatch.claim import Claimed
from hub.dispatch.outcomes import Held, Result
from hub.dispatch.tracked_links import TrackedLinks
from hub.dispatch.tracked_message import tracked
from hub.domain import (
    Channel,
    DeferralReason,
    DeliveryState,
    EscalationUnless,
    Frequency,
    RefusalReason,
    WithdrawalReason,
    delivery_reason,
)
from hub.preferences.model import Caps, Resolution, TopicView
from hub.preferences.resolver import resolve
from hub.preferences.tokens import LinkSigner, Purpose
from hub.schemas.campaigns import AbMetric
from hub.services.hashing import AddressHasher
from hub.services.message_keys import MessageKeys
from hub.services.templates import contact_context
from hub.services.templates import doc as template_doc
from hub.templates import CompiledTemplate, Links, Rendered, Renderer, TemplateError

FEEDBACK_SENDER = "hub"  # Feedback-ID's last field: who sent it, the same on every message


@dataclass(frozen=True, slots=True)
class Outgoing:
    delivery: Claimed
    topic_key: str
    message: OutgoingMessage
    riders: tuple[Claimed, ...] = ()  # a digest's other items: they share the message's fate


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What a batch needs of its notification, detached from any session."""

    notification_id: int
    data: dict[str, Any]
    topic_id: int
    topic_key: str
    topic_name: str
    topic: TopicView
    template: CompiledTemplate
    escalates: bool = False
    # Something acts on opens (see `_counts_opens`): the pixel goes in whatever it costs in
    # spam score.
    needs_pixel: bool = False
    render_as: _Person | None = None  # whom every delivery is rendered as (a campaign's test)
    tracking: bool = False  # opens and clicks of its e-mail (the notification's or topic's)
    track_sms: bool = False  # and the links of its SMS
    campaign_id: int | None = None  # its e-mail's Feedback-ID groups by campaign


def _counts_opens(session: Session, notification: Notification) -> bool:
    """Whether something decides by this notification's opens: a later escalation step that
    waits for one (without a pixel everyone would be escalated), or an A/B test won by opens
    (a short arm without one could never win)."""
    steps = notification.escalation or ()
    if any(escalation.unless_of(step) is EscalationUnless.OPENED for step in steps):
        return True
    if notification.campaign_id is None:
        return False
    campaign = session.get(Campaign, notification.campaign_id)
    return campaign is not None and (campaign.ab or {}).get("metric") == AbMetric.OPEN


@dataclass(frozen=True, slots=True)
class _Person:
    """A contact as a template sees them, read when the notification is first composed."""

    contact: dict[str, Any]
    locale: str | None


@dataclass(frozen=True, slots=True)
class Composed:
    outgoing: list[Outgoing]
    held: list[Held]
    failed: list[Result]  # could not render: permanent for this message


@dataclass
class Loaded:
    """What the reads found: per notification its deliveries, their people and the ids of
    those an earlier escalation step stopped; and each digest's template, by topic."""

    groups: list[tuple[_Prepared, list[Claimed], dict[int, audience.Recipient], set[int]]]
    digests: dict[str, CompiledTemplate]


def renderable(template: CompiledTemplate) -> frozenset[Channel]:
    # A webhook without its own part carries the notification's data as a default document.
    return template.channels() | {Channel.WEBHOOK}


class Composer:
    def __init__(
        self,
        *,
        renderer: Renderer,
        links: LinkSigner,
        keys: MessageKeys,
        hasher: AddressHasher,
        public_url: str,
        unsubscribe_mailto: str | None = None,
        voice_opt_out: dict[str, str] | None = None,
        cache_size: int = 64,
        caps: Caps = audience.NO_CAPS,
        callback_paths: Mapping[Channel, CallbackPaths] | None = None,
        tracked: TrackedLinks | None = None,
    ) -> None:
        """`callback_paths`: where each channel's provider calls back (under `public_url`);
        `tracked`: signs the click and open URLs of tracked messages (None: nothing is)."""
        self.tracked = tracked
        self.renderer = renderer
        self.links = links
        self.keys = keys
        self.caps = caps
        self.hasher = hasher
        self.public_url = public_url.rstrip("/")
        self.unsubscribe_mailto = unsubscribe_mailto
        self._voice_opt_out = voice_opt_out or voice_prompt.VOICE_OPT_OUT
        self.callback_paths = callback_paths or {}
        self._cache: OrderedDict[int, _Prepared] = OrderedDict()
        self._lock = threading.Lock()  # worker threads share the cache
        self._cache_size = cache_size
        self._digests = digest.Templates(renderer)

    def voice_opt_out(self, locale: str | None) -> str:
        """The "press 9" prompt in the contact's language: ru-RU, then ru, then en."""
        return voice_prompt.choose(self._voice_opt_out, locale)

    def compiled(self, notification: Notification) -> CompiledTemplate:
        """Compiled once per notification per process; a notification's template is frozen."""
        return self._prepared(notification).template

    def load(self, session: Session, claimed: Sequence[Claimed], now: dt.datetime) -> Loaded:
        """The reads: each notification's frozen parts and the people, as they are now."""
        loaded = Loaded([], {})
        digest_topics: set[str] = set()
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
            checked = (
                escalation.check(session, notification_id, deliveries)
                if prepared.escalates
                else escalation.Checked(deliveries, set())
            )
            deliveries[:] = checked.deliveries  # each later step with why it goes or stops
            reached = checked.stopped  # the ids of those an earlier step stopped
            loaded.groups.append((prepared, deliveries, recipients, reached))
            if any(d.reason == DeferralReason.DIGEST for d in deliveries):
                digest_topics.add(prepared.topic_key)
        loaded.digests = self._digests.for_topics(session, digest_topics)
        return loaded

    def compose(self, loaded: Loaded, now: dt.datetime) -> Composed:
        """Re-check and render, outside any transaction (it is CPU work, no reads)."""
        result = Composed([], [], [])
        # A digest's items, per person, topic and channel: one message for them all.
        digests: dict[tuple[int, str, Channel], list[tuple[_Prepared, Claimed]]] = {}
        people: dict[int, audience.Recipient] = {}
        for prepared, deliveries, recipients, reached in loaded.groups:
            for delivery in deliveries:
                recipient = recipients.get(delivery.contact_id)
                if delivery.id in reached:
                    stopped = WithdrawalReason.CHAIN_STOPPED
                    result.held.append(
                        Held(delivery, prepared.topic_key, DeliveryState.SUPPRESSED, stopped)
                    )
                    continue
                if recipient is None:
                    result.held.append(
                        Held(
                            delivery,
                            prepared.topic_key,
                            DeliveryState.SUPPRESSED,
                            WithdrawalReason.CONTACT_ERASED,
                        )
                    )
                    continue
                subscription = recipient.subscription
                waited = delivery.reason == DeferralReason.DIGEST
                if subscription is not None and waited:
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
                if delivery.channel not in resolution.send_now:
                    result.held.append(_held(prepared.topic_key, delivery, resolution))
                elif waited:
                    key = (recipient.id, prepared.topic_key, delivery.channel)
                    digests.setdefault(key, []).append((prepared, delivery))
                    people[recipient.id] = recipient
                else:
                    self._render(result, prepared, delivery, recipient, now=now)
        for (contact_id, topic_key, _), items in digests.items():
            # In the order they were posted, not the order their rows were made: fan-outs of
            # several notifications commit in whatever order their workers finish.
            items.sort(key=lambda item: (item[0].notification_id, item[1].id))
            self._render_digest(result, items, people[contact_id], loaded.digests[topic_key])
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
        session = _session_of(notification)
        topic = session.get_one(Topic, notification.topic_id)
        render_as = None
        if notification.render_as_id is not None:
            person = session.get(Contact, notification.render_as_id)
            if person is not None:  # erased since: rendered as its recipient instead
                render_as = _Person(_contact_context(person), person.locale)
        prepared = _Prepared(
            notification_id=notification.id,
            data=notification.data,
            topic_id=topic.id,
            topic_key=topic.key,
            topic_name=topic.name,
            topic=audience.topic_view(topic, self.caps),
            template=self.renderer.compile(doc),
            escalates=bool(notification.escalation),
            needs_pixel=_counts_opens(session, notification),
            render_as=render_as,
            tracking=topic.tracking if notification.tracking is None else notification.tracking,
            track_sms=topic.track_sms,
            campaign_id=notification.campaign_id,
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
        *,
        now: dt.datetime,
    ) -> None:
        channel = delivery.channel
        links, unsubscribe_token = self._links(recipient, prepared.topic_key)
        context = self._context(recipient, prepared) | {"data": prepared.data}
        locale = recipient.locale
        if prepared.render_as is not None:
            context["contact"], locale = prepared.render_as.contact, prepared.render_as.locale
        key = self._key(prepared.notification_id, delivery, recipient)
        try:
            rendered: Rendered
            if channel is Channel.WEBHOOK and channel not in prepared.template.channels():
                rendered = Rendered(body=_default_document(key, prepared, context["contact"]))
            else:
                rendered = prepared.template.render(
                    channel, locale=locale, context=context, links=links
                )
        except TemplateError as exc:
            result.failed.append(_unrenderable(delivery, prepared.topic_key, exc))
            return
        # A test send (rendered as someone else) is never tracked: it would count as theirs.
        tracking = prepared.tracking and not recipient.tracking_off
        if tracking and self.tracked is not None and prepared.render_as is None:
            rendered = tracked(
                self.tracked,
                rendered,
                delivery_id=delivery.id,
                channel=channel,
                sms=prepared.track_sms,
                now=now,
                pixel_always=prepared.needs_pixel,
            )
        message = self._message(
            delivery,
            recipient,
            key=key,
            rendered=rendered,
            links=links,
            unsubscribe_token=unsubscribe_token,
            prepared=prepared,
        )
        result.outgoing.append(Outgoing(delivery, prepared.topic_key, message))

    def _render_digest(
        self,
        result: Composed,
        waited: list[tuple[_Prepared, Claimed]],
        recipient: audience.Recipient,
        template: CompiledTemplate,
    ) -> None:
        """One message for what waited (`digest.render`), with the first item's links."""
        first = waited[0][0]
        links, unsubscribe_token = self._links(recipient, first.topic_key)
        made, failed = digest.render(
            waited,
            template,
            recipient,
            topic_key=first.topic_key,
            context=self._context(recipient, first),
            links=links,
            key_for=lambda lead: self._key(lead.notification_id, lead, recipient),
        )
        result.failed.extend(_unrenderable(d, first.topic_key, exc) for d, exc in failed)
        if made is None:
            return
        lead, *riders = made.deliveries
        message = self._message(
            lead,
            recipient,
            key=made.key,
            rendered=made.rendered,
            links=links,
            unsubscribe_token=unsubscribe_token,
            prepared=first,
        )
        result.outgoing.append(Outgoing(lead, first.topic_key, message, tuple(riders)))

    def _key(self, notification_id: int, delivery: Claimed, recipient: audience.Recipient) -> str:
        """Bound to the address the message goes to: a report must name it to match."""
        return self.keys.key(notification_id, delivery.id, _address(delivery, recipient))

    def _links(self, recipient: audience.Recipient, topic_key: str) -> tuple[Links, str]:
        contact_id, link_key = recipient.id, recipient.link_key
        preferences_token = self.links.sign(Purpose.PREFERENCES, contact_id, link_key=link_key)
        unsubscribe_token = self.links.sign(
            Purpose.UNSUBSCRIBE, contact_id, topic_key, link_key=link_key
        )
        links = Links(
            preferences_url=f"{self.public_url}/preferences/{preferences_token}",
            unsubscribe_url=f"{self.public_url}/unsubscribe/{unsubscribe_token}",
        )
        return links, unsubscribe_token

    @staticmethod
    def _context(recipient: audience.Recipient, prepared: _Prepared) -> dict[str, Any]:
        contact = contact_context(
            external_id=recipient.external_id,
            name=recipient.name,
            locale=recipient.locale,
            timezone=recipient.view.timezone,
            attributes=recipient.attributes,
        )
        return {
            "contact": contact,
            "topic": {"key": prepared.topic_key, "name": prepared.topic_name},
        }

    def _message(
        self,
        delivery: Claimed,
        recipient: audience.Recipient,
        *,
        key: str,
        rendered: Rendered,
        links: Links,
        unsubscribe_token: str,
        prepared: _Prepared,
    ) -> OutgoingMessage:
        channel = delivery.channel
        email = channel is Channel.EMAIL
        unsubscribable = _unsubscribable(prepared.topic)
        calls_back = self.callback_paths.get(channel)
        mailto = None
        if unsubscribable and email and self.unsubscribe_mailto:
            mailto = f"mailto:{self.unsubscribe_mailto}?subject=unsubscribe%20{unsubscribe_token}"
        return OutgoingMessage(
            delivery_id=delivery.id,
            channel=channel,
            key=key,
            to=_address(delivery, recipient),
            to_name=recipient.name,
            locale=recipient.locale,
            subject=rendered.subject,
            text=rendered.text,
            html=rendered.html,
            body=rendered.body,
            unsubscribe_url=links.unsubscribe_url if unsubscribable and email else None,
            unsubscribe_mailto=mailto,
            list_id=prepared.topic_key if email else None,
            list_name=prepared.topic_name if email else None,
            feedback_id=_feedback_id(prepared) if email else None,
            callback_url=f"{self.public_url}{calls_back.status}" if calls_back else None,
            keypress_url=(
                f"{self.public_url}{calls_back.keypress}"
                if calls_back and calls_back.keypress and channel is Channel.VOICE
                else None
            ),
            opt_out_prompt=(
                self.voice_opt_out(recipient.locale) if channel is Channel.VOICE else None
            ),
        )


def _unsubscribable(topic: TopicView) -> bool:
    """Whether its e-mail carries List-Unsubscribe (and one-click): marketing mail always
    must; a transactional topic the person may leave (not required) offers it too, since
    the one-click link works for it. A required topic's would only lead to a refusal."""
    return topic.marketing or not topic.required


def _feedback_id(prepared: _Prepared) -> str:
    """Gmail's feedback loop counts complaints per field: the campaign (or "api" for what
    the API posted), the topic, and Hub as the sender; stable, so never per message."""
    campaign = str(prepared.campaign_id) if prepared.campaign_id is not None else "api"
    return f"{campaign}:{prepared.topic_key}:{FEEDBACK_SENDER}"


def _address(delivery: Claimed, recipient: audience.Recipient) -> str:
    return recipient.view.addresses.get(delivery.channel) or delivery.address or ""


def _unrenderable(delivery: Claimed, topic_key: str, exc: TemplateError) -> Result:
    error = PermanentDeliveryError(f"template: {exc}", code="template")
    return Result(delivery, topic_key, "render", error)


def _held(topic_key: str, delivery: Claimed, resolution: Resolution) -> Held:
    """Why a claimed delivery may not go now: deferred until a time, or refused."""
    for deferral in resolution.deferred:
        if deferral.channel is delivery.channel:
            return Held(
                delivery, topic_key, DeliveryState.DEFERRED, deferral.reason, until=deferral.until
            )
    reason = next(
        (
            delivery_reason(r.reason, r.detail)
            for r in resolution.refused
            if r.channel is delivery.channel
        ),
        delivery_reason(RefusalReason.NOT_SUBSCRIBED),
    )
    return Held(delivery, topic_key, DeliveryState.SUPPRESSED, reason)


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


def _contact_context(person: Contact) -> dict[str, Any]:
    return contact_context(
        external_id=person.external_id,
        name=person.name,
        locale=person.locale,
        timezone=person.timezone,
        attributes=person.attributes,
    )


def _session_of(notification: Notification) -> Session:
    from sqlalchemy.orm import object_session

    session = object_session(notification)
    if session is None:
        raise RuntimeError("notification is detached from its session")
    return session
