"""A notification's own events in words (`timeline_words`): scheduled for later, and
cancelled before it went: "Notification #12 (Order updates) scheduled for 09:00
Europe/Berlin, 24 Dec, by API key 'billing'", "Notification #12 (Order updates) cancelled by
API key 'billing' before it was sent"."""

from __future__ import annotations

from collections.abc import Callable

from hub.domain import ActorKind, EventType
from hub.services.timeline_phrases import (
    Event,
    Known,
    Ref,
    RefKind,
    Words,
    data,
    moment,
    notification_id,
    quoted,
    text,
)


def _scheduled(event: Event, known: Known) -> Words:
    when = moment(data(event).get("send_at"), known.zone, known)
    return (
        *_notification(event, known),
        " scheduled",
        f" for {when}," if when else "",
        _by(event),
    )


def _cancelled(event: Event, known: Known) -> Words:
    return (*_notification(event, known), " cancelled", _by(event), " before it was sent")


SAYERS: dict[str, Callable[[Event, Known], Words]] = {
    EventType.NOTIFICATION_SCHEDULED: _scheduled,
    EventType.NOTIFICATION_CANCELLED: _cancelled,
}


def _notification(event: Event, known: Known) -> Words:
    """`Notification #12 (Order updates)`: linked, with its topic's name when known."""
    number = notification_id(event)
    head: Words = ("Notification",)
    if number is not None:
        head = ("Notification ", Ref(RefKind.NOTIFICATION, str(number), f"#{number}"))
    if event.topic_key:
        name = known.topics.get(event.topic_key) or event.topic_key
        head = (*head, " (", Ref(RefKind.TOPIC, event.topic_key, name), ")")
    return head


def _by(event: Event) -> str:
    """Who did it: an API key by its name, staff in the console; "" when not known."""
    who = text(event.actor)
    if event.actor_kind == ActorKind.API_KEY and who:
        return f" by API key {quoted(who)}"
    if event.actor_kind == ActorKind.STAFF and who:
        return f" by {who} in the console"
    return ""
