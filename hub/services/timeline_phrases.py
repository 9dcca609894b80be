"""What the timeline's sentences are made of (`timeline_words`): a stored event as plain
strings, the facts its ids point to, links as `Ref`s, and the phrases several kinds share
(" to ada@example.com", " for campaign 'Spring offer' (notification #3)").

Each phrase reads the stored data defensively (`changes` is JSON written by several writers
over the years): a missing or odd field leaves a word out, it never raises.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.domain import ActorKind, Channel
from hub.services import delivery_words


class RefKind(enum.StrEnum):
    """What an id in the words names; the console links each kind to its own page."""

    NOTIFICATION = "notification"
    CAMPAIGN = "campaign"
    TOPIC = "topic"
    TEMPLATE = "template"
    CONTACT = "contact"  # a person, by their external id


@dataclass(frozen=True, slots=True)
class Ref:
    kind: RefKind
    key: str  # the notification's or campaign's id, the topic's or template's key
    text: str  # what the reader sees


Part = str | Ref
Words = tuple[Part, ...]


@dataclass(frozen=True, slots=True)
class Sending:
    """What a notification id in an event points to."""

    campaign_id: int | None = None
    campaign_name: str | None = None
    template_key: str | None = None
    template_version: int | None = None
    arm: str | None = None  # its A/B variant's name


@dataclass(frozen=True, slots=True)
class Known:
    """The facts a page of events names, read together: notifications (with their campaign
    and template) by id, the address each delivery went to by delivery id, topic names by
    key; and the person's time zone and the moment, to say when a wait ends."""

    now: dt.datetime
    zone: str | None = None
    notifications: Mapping[int, Sending] = field(default_factory=dict)
    addresses: Mapping[int, str | None] = field(default_factory=dict)
    topics: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Event:
    """A stored event as the words read it (plain strings: a kind or channel this version
    does not know still reads)."""

    kind: str
    channel: str | None = None
    topic_key: str | None = None
    reason: str | None = None
    changes: Any = None  # JSON as stored; every writer today stores an object
    actor_kind: str = ActorKind.SYSTEM.value
    actor: str = ""
    source: str = ""


MAX_QUOTED = 160  # characters of a message body, an error or a note kept in a sentence
OPEN, CLOSE = "\N{LEFT SINGLE QUOTATION MARK}", "\N{RIGHT SINGLE QUOTATION MARK}"
CHANNEL_NOUNS: dict[str, str] = {
    Channel.EMAIL: "e-mail",
    Channel.SMS: "SMS",
    Channel.VOICE: "call",
    Channel.WEBHOOK: "webhook",
}


def plain(words: Words) -> str:
    """The words as text, links as their text."""
    return "".join(p if isinstance(p, str) else p.text for p in words)


def data(event: Event) -> Mapping[str, Any]:
    """The event's stored changes, or nothing when they are not an object."""
    return event.changes if isinstance(event.changes, Mapping) else {}


def noun(event: Event) -> str:
    channel = event.channel or ""
    return CHANNEL_NOUNS.get(channel, channel or "message")


def capital_noun(event: Event) -> str:
    return delivery_words.capital(noun(event))


def integer(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def cut(said: str | None) -> str:
    """On one line, and no longer than `MAX_QUOTED`."""
    said = " ".join((said or "").split())
    return said if len(said) <= MAX_QUOTED else said[: MAX_QUOTED - 1] + "…"


def quoted(said: str | None) -> str:
    """What a person or staff wrote, in quotation marks, cut to `MAX_QUOTED`."""
    return f"{OPEN}{cut(said)}{CLOSE}"


def strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def before(change: Any) -> Any:
    return change.get("before") if isinstance(change, Mapping) else None


def after(change: Any) -> Any:
    return change.get("after") if isinstance(change, Mapping) else None


def notification_id(event: Event) -> int | None:
    """A delivery's event names it `notification_id`; a notification's own, `notification`."""
    changes = data(event)
    return integer(changes.get("notification_id", changes.get("notification")))


def topic(event: Event, known: Known) -> Words:
    """The event's topic by name, linked; its key when the name is not known."""
    key = event.topic_key
    if not key:
        return ("a topic",)
    return (Ref(RefKind.TOPIC, key, known.topics.get(key) or key),)


def to(event: Event, known: Known) -> Words:
    """` to ada@example.com`: the address the event's delivery went to, when known."""
    address = known.addresses.get(integer(data(event).get("delivery_id")) or 0)
    return (f" to {address}",) if address else ()


def sent_for(event: Event, known: Known) -> Words:
    """` for campaign 'Spring offer' (notification #3)`, ` for Orders (notification #4)`."""
    number = notification_id(event)
    if number is None:
        return (" for ", *topic(event, known)) if event.topic_key else ()
    note = Ref(RefKind.NOTIFICATION, str(number), f"#{number}")
    sending = known.notifications.get(number)
    if sending is not None and sending.campaign_id is not None:
        name = sending.campaign_name or f"#{sending.campaign_id}"
        campaign = Ref(RefKind.CAMPAIGN, str(sending.campaign_id), name)
        variant = f", variant {sending.arm}" if sending.arm else ""
        return (f" for campaign {OPEN}", campaign, f"{CLOSE} (notification ", note, f"{variant})")
    if event.topic_key:
        return (" for ", *topic(event, known), " (notification ", note, ")")
    return (" (notification ", note, ")")


def moment(value: Any, zone: str | None, known: Known) -> str:
    """An ISO time the event keeps, as `08:00 Europe/Berlin, 7 Dec`; "" when there is none."""
    if not isinstance(value, str):
        return ""
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        return ""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return delivery_words.moment(at, zone, now=known.now)
