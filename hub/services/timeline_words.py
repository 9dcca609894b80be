"""A timeline event in plain words, as the console shows it: "E-mail sent to ada@example.com
for campaign 'Spring offer' (notification #3)", with the event's stored data beside it as
rows of a two-column table for support staff.

Pure: an event and the facts its ids point to (read once a page by `timeline_entries`) go
in, words come out. Ids become `Ref`s, not URLs: the console decides where each one leads.
A kind with no words gets None from `sentence`, and the page shows the kind itself as it
always did; the unit tests fail when `EventType` gains a kind that is not worded here.

Every function reads the stored data defensively (`changes` is JSON written by several
writers over the years): a missing or odd field leaves a word out, it never raises.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub.domain import (
    ActorKind,
    Channel,
    DeferralReason,
    DeliveryNote,
    DeliveryState,
    EventType,
    SubscriptionStatus,
    SuppressionReason,
)
from hub.services import delivery_words


class RefKind(enum.StrEnum):
    """What an id in the words names; the console links each kind to its own page."""

    NOTIFICATION = "notification"
    CAMPAIGN = "campaign"
    TOPIC = "topic"
    TEMPLATE = "template"


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
MAX_DETAILS = 12  # rows of an event's details table; the rest is counted in the last row

OPEN, CLOSE = "\N{LEFT SINGLE QUOTATION MARK}", "\N{RIGHT SINGLE QUOTATION MARK}"
CHANNEL_NOUNS: dict[str, str] = {
    Channel.EMAIL: "e-mail",
    Channel.SMS: "SMS",
    Channel.VOICE: "call",
    Channel.WEBHOOK: "webhook",
}
# The door a change came through (the event's `source`), said after the verb.
DOORS = {
    "console": " in the console",
    "console.import": " by an import in the console",
    "api": " through the API",
    "api.import": " by an import through the API",
    "cli.import": " by an import at the command line",
    "self-service": " on the preferences page",
    "self-service.one-click": " with the one-click unsubscribe link in an e-mail",
    "self-service.subscribe-form": " on the subscribe form",
    "self-service.double-opt-in": " with the link in the confirmation e-mail",
}
FIELD_NAMES = {
    "name": "name",
    "email": "e-mail address",
    "phone": "phone number",
    "webhook_url": "webhook URL",
    "locale": "language",
    "timezone": "time zone",
    "kind": "kind",
}
BOUNCES: dict[str, str] = {
    SuppressionReason.HARD_BOUNCE: "bounced for good (hard bounce)",
    SuppressionReason.SOFT_BOUNCE: "bounced for now (soft bounce)",
    SuppressionReason.COMPLAINT: "was marked as spam (a complaint)",
}
KEYWORDS = {
    "stop": "they asked for no more SMS",
    "start": "they asked for SMS again",
}
FREQUENCIES = {"immediate": "it happens", "daily": "a daily digest", "weekly": "a weekly digest"}


def sentence(event: Event, known: Known) -> Words | None:
    """The event in words, or None for a kind with no words (the page then shows the kind)."""
    say = _SAYERS.get(event.kind)
    return None if say is None else say(event, known)


def fallback(event: Event) -> Words:
    """What the timeline showed before it had words: the kind, channel, topic and reason."""
    said = [event.kind]
    said += [f" · {v}" for v in (event.channel, event.topic_key) if v]
    if event.reason:
        said.append(f": {event.reason}")
    return ("".join(said),)


def details(event: Event, known: Known) -> list[tuple[str, Words]]:
    """The event's stored data as (name, value) rows: a change as `before → after`, the
    notification id linked, and the template it was rendered from when that is known."""
    rows: list[tuple[str, Words]] = []
    changes = event.changes
    if isinstance(changes, Mapping):
        for name, change in changes.items():
            rows.append((str(name), _detail(str(name), change)))
    elif changes is not None:
        rows.append(("data", (_value(changes),)))
    if event.reason:
        rows.append(("reason", (event.reason,)))
    sending = known.notifications.get(_notification_id(event) or 0)
    if sending is not None and sending.template_key:
        rows.append(("template", (_template(sending),)))
    if len(rows) > MAX_DETAILS:
        rest = len(rows) - MAX_DETAILS + 1
        rows = [*rows[: MAX_DETAILS - 1], ("…", (f"and {rest} more (the API's timeline has all)",))]
    return rows


def plain(words: Words) -> str:
    """The words as text, links as their text."""
    return "".join(p if isinstance(p, str) else p.text for p in words)


# --- deliveries -------------------------------------------------------------------------


def _sent(event: Event, known: Known) -> Words:
    head = "Call made" if event.channel == Channel.VOICE else f"{_capital_noun(event)} sent"
    changes = _changes(event)
    digest = changes.get("digest")
    items = digest.get("items") if isinstance(digest, Mapping) else None
    tail = f", in one digest of {items} messages" if isinstance(items, int) and items > 1 else ""
    return (head, *_to(event, known), *_for(event, known), tail, _attempt(event), _reported(event))


def _delivered(event: Event, known: Known) -> Words:
    verb = "answered" if event.channel == Channel.VOICE else "delivered"
    head, detail = delivery_words.split(event.reason)
    how = ""
    if head == DeliveryNote.ANSWERED_BY and detail:
        how = f": answered by {detail.replace('_', ' ')}, not a person"
    return (
        _capital_noun(event),
        *_to(event, known),
        f" {verb}",
        *_for(event, known),
        how,
        _reported(event),
    )


def _bounced(event: Event, known: Known) -> Words:
    changes = _changes(event)
    what = BOUNCES.get(event.reason or "", "bounced")
    said = _text(changes.get("detail")) or _text(changes.get("status"))
    return (
        _capital_noun(event),
        *_to(event, known),
        f" {what}",
        *_for(event, known),
        f": {_cut(said)}" if said else "",
    )


def _failed(event: Event, known: Known) -> Words:
    why = delivery_words.reason_words(DeliveryState.FAILED, event.reason)
    problem = _problem(event)
    if why and problem:
        why = f"{why} ({problem})"
    return (
        _capital_noun(event),
        *_to(event, known),
        " failed",
        *_for(event, known),
        f": {why or problem}" if why or problem else "",
        _attempt(event),
    )


def _retrying(event: Event, known: Known) -> Words:
    changes = _changes(event)
    paused = changes.get("channel_paused") is True
    why = "the channel is paused" if paused else _problem(event)
    again = _moment(changes.get("retry_at"), None, known)
    return (
        _capital_noun(event),
        *_to(event, known),
        " not sent yet",
        *_for(event, known),
        f": {why}" if why else "",
        f"; Hub tries again at {again}" if again else "; Hub tries again later",
        _attempt(event),
    )


def _unknown(event: Event, known: Known) -> Words:
    changes = _changes(event)
    why = delivery_words.reason_words(DeliveryState.UNKNOWN, event.reason)
    if changes.get("resending") is True:
        why = "the worker stopped while sending; Hub sends it again under the same key"
    again = _moment(changes.get("retry_at"), None, known)
    if not why:
        why = _problem(event) or "the provider's answer was lost"
    return (
        _capital_noun(event),
        *_to(event, known),
        " may or may not have gone",
        *_for(event, known),
        f": {why}",
        f"; Hub tries again at {again}" if again else "",
        _attempt(event),
    )


def _refused(event: Event, known: Known) -> Words:
    why = delivery_words.reason_words(DeliveryState.SUPPRESSED, event.reason)
    return (
        _capital_noun(event),
        *_to(event, known),
        " refused",
        *_for(event, known),
        f": {why}" if why else "",
    )


def _deferred(event: Event, known: Known) -> Words:
    head, _ = delivery_words.split(event.reason)
    waits = delivery_words.WAITS.get(head, head.replace("_", " ")) if head else ""
    local = head in delivery_words.LOCAL_WAITS
    until = _moment(_changes(event).get("until"), known.zone if local else None, known)
    why = f"it waits for {waits}" if waits else "it waits"
    if until and head != DeferralReason.PAUSED:
        why += f", until {until}"
    return (_capital_noun(event), *_to(event, known), " held back", *_for(event, known), f": {why}")


# --- the person and their choices ------------------------------------------------------


def _created(event: Event, known: Known) -> Words:
    kind = _after(_changes(event).get("kind"))
    what = f"Added as {'an' if kind == 'employee' else 'a'} {kind}" if kind else "Added to Hub"
    return (what, _door(event))


def _updated(event: Event, known: Known) -> Words:
    names = [_field_name(str(name)) for name in _changes(event)]
    said = delivery_words.listed(names)
    return ("Details changed", _door(event), f": {said}" if said else "")


def _subscription(event: Event, known: Known) -> Words:
    changes = _changes(event)
    status = changes.get("status")
    before = _before(status) if isinstance(status, Mapping) else None
    after = _after(status) if isinstance(status, Mapping) else None
    topic = _topic(event, known)
    channels = _channels(_after(changes.get("channels")))
    then: list[str] = []  # said after the door: "...on the subscribe form; a confirmation..."
    if after == SubscriptionStatus.SUBSCRIBED:
        if before == SubscriptionStatus.PENDING:
            head: Words = ("Confirmed the subscription to ", *topic)
        else:
            again = " again" if before == SubscriptionStatus.UNSUBSCRIBED else ""
            head = (f"Subscribed{again} to ", *topic, f" by {channels}" if channels else "")
    elif after == SubscriptionStatus.UNSUBSCRIBED:
        head = ("Unsubscribed from ", *topic)
    elif after == SubscriptionStatus.PENDING:
        head = ("Asked to subscribe to ", *topic)
        then.append("; a confirmation e-mail was sent")
    else:
        head = ("Subscription to ", *topic, " changed")
        frequency = FREQUENCIES.get(str(_after(changes.get("frequency"))))
        parts = [f"by {channels}" if channels else "", f"as {frequency}" if frequency else ""]
        if said := ", ".join(p for p in parts if p):
            then.append(f": {said}")
    note = event.reason if event.reason not in {"confirmation_sent", "double_opt_in"} else None
    if note:
        then.append(f": {_quoted(note)}")
    return (*head, _door(event), *then)


def _preferences(event: Event, known: Known) -> Words:
    changes = _changes(event)
    said: list[str] = []
    everything = changes.get("unsubscribed_all")
    if isinstance(everything, Mapping) and "after" in everything:
        said.append(
            "unsubscribed from everything"
            if everything["after"] is True
            else "no longer unsubscribed from everything"
        )
    blocked = changes.get("blocked_channels")
    if isinstance(blocked, Mapping):
        before, after = set(_strings(blocked.get("before"))), set(_strings(blocked.get("after")))
        if off := sorted(after - before):
            said.append(f"turned off {_channels(off, plural=True)}")
        if on := sorted(before - after):
            said.append(f"turned {_channels(on, plural=True)} back on")
    quiet = changes.get("quiet_hours")
    if isinstance(quiet, Mapping) and "after" in quiet:
        hours = quiet["after"]
        if isinstance(hours, Mapping) and hours.get("start") and hours.get("end"):
            said.append(f"quiet hours {hours['start']}\N{EN DASH}{hours['end']}")
        else:
            said.append("quiet hours removed")
    digest = changes.get("digest")
    if isinstance(digest, Mapping) and "after" in digest:
        chosen = digest["after"]
        if isinstance(chosen, Mapping) and chosen.get("time"):
            day = f" on {str(chosen['weekday']).capitalize()}s" if chosen.get("weekday") else ""
            said.append(f"digests{day} at {chosen['time']}")
        else:
            said.append("digest time removed")
    if len(said) == 1:
        return (delivery_words.capital(said[0]), _door(event))
    return ("Preferences changed", _door(event), f": {'; '.join(said)}" if said else "")


def _suppressed(event: Event, known: Known) -> Words:
    reason = event.reason or ""
    why = delivery_words.SUPPRESSIONS.get(reason, reason.replace("_", " "))
    note = _text(_changes(event).get("note"))
    if reason == SuppressionReason.MANUAL and note:
        why = f"{why}: {_quoted(note)}"
    span = "for a while" if reason == SuppressionReason.COOL_DOWN else "from now on"
    return (f"{_capital_noun(event)} refused {span}", f": {why}" if why else "")


def _unsuppressed(event: Event, known: Known) -> Words:
    if event.actor_kind == ActorKind.INBOUND and event.channel == Channel.SMS:
        return (f"{_capital_noun(event)} allowed again: the person replied START",)
    reason = event.reason or ""
    was = delivery_words.SUPPRESSIONS.get(reason, reason.replace("_", " "))
    lifted = f": the refusal ({was}) was lifted"
    return (f"{_capital_noun(event)} allowed again", _door(event), lifted)


def _inbound(event: Event, known: Known) -> Words:
    body = _text(_changes(event).get("body"))
    means = KEYWORDS.get(event.reason or "")
    return (
        f"Replied by {_noun(event)}",
        f": {_quoted(body)}" if body else "",
        f" ({means})" if means else "",
    )


_SAYERS: dict[str, Callable[[Event, Known], Words]] = {
    EventType.CONTACT_CREATED: _created,
    EventType.CONTACT_UPDATED: _updated,
    EventType.SUBSCRIPTION_CHANGED: _subscription,
    EventType.PREFERENCES_CHANGED: _preferences,
    EventType.SUPPRESSION_ADDED: _suppressed,
    EventType.SUPPRESSION_REMOVED: _unsuppressed,
    EventType.INBOUND_MESSAGE: _inbound,
    EventType.DELIVERY_SENT: _sent,
    EventType.DELIVERY_DELIVERED: _delivered,
    EventType.DELIVERY_BOUNCED: _bounced,
    EventType.DELIVERY_FAILED: _failed,
    EventType.DELIVERY_RETRYING: _retrying,
    EventType.DELIVERY_UNKNOWN: _unknown,
    EventType.DELIVERY_REFUSED: _refused,
    EventType.DELIVERY_DEFERRED: _deferred,
}
WORDED = frozenset(_SAYERS)  # the kinds with words


# --- pieces -----------------------------------------------------------------------------


def _changes(event: Event) -> Mapping[str, Any]:
    return event.changes if isinstance(event.changes, Mapping) else {}


def _noun(event: Event) -> str:
    channel = event.channel or ""
    return CHANNEL_NOUNS.get(channel, channel or "message")


def _capital_noun(event: Event) -> str:
    return delivery_words.capital(_noun(event))


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _cut(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= MAX_QUOTED else text[: MAX_QUOTED - 1] + "…"


def _quoted(text: str | None) -> str:
    """What a person or staff wrote, in quotation marks, cut to `MAX_QUOTED`."""
    return f"{OPEN}{_cut(text)}{CLOSE}"


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _before(change: Any) -> Any:
    return change.get("before") if isinstance(change, Mapping) else None


def _after(change: Any) -> Any:
    return change.get("after") if isinstance(change, Mapping) else None


def _channels(value: Any, *, plural: bool = False) -> str:
    """`e-mail and SMS` for ["email", "sms"] (`e-mails and SMS` when `plural`); "" for none."""
    names = [
        delivery_words.NOUNS[c][1]
        if plural and c in delivery_words.NOUNS
        else CHANNEL_NOUNS.get(c, c)
        for c in _strings(value)
    ]
    return delivery_words.listed(names)


def _field_name(name: str) -> str:
    if name.startswith("attributes."):
        return f"attribute {_quoted(name.removeprefix('attributes.'))}"
    return FIELD_NAMES.get(name, name.replace("_", " "))


def _door(event: Event) -> str:
    return DOORS.get(event.source, "")


def _notification_id(event: Event) -> int | None:
    return _int(_changes(event).get("notification_id"))


def _to(event: Event, known: Known) -> Words:
    address = known.addresses.get(_int(_changes(event).get("delivery_id")) or 0)
    return (f" to {address}",) if address else ()


def _topic(event: Event, known: Known) -> Words:
    key = event.topic_key
    if not key:
        return ("a topic",)
    return (Ref(RefKind.TOPIC, key, known.topics.get(key) or key),)


def _for(event: Event, known: Known) -> Words:
    """` for campaign 'Spring offer' (notification #3)`, ` for Orders (notification #4)`."""
    number = _notification_id(event)
    if number is None:
        return (" for ", *_topic(event, known)) if event.topic_key else ()
    note = Ref(RefKind.NOTIFICATION, str(number), f"#{number}")
    sending = known.notifications.get(number)
    if sending is not None and sending.campaign_id is not None:
        name = sending.campaign_name or f"#{sending.campaign_id}"
        campaign = Ref(RefKind.CAMPAIGN, str(sending.campaign_id), name)
        return (f" for campaign {OPEN}", campaign, f"{CLOSE} (notification ", note, ")")
    if event.topic_key:
        return (" for ", *_topic(event, known), " (notification ", note, ")")
    return (" (notification ", note, ")")


def _attempt(event: Event) -> str:
    attempt = _int(_changes(event).get("attempt"))
    return f", on attempt {attempt}" if attempt is not None and attempt > 1 else ""


def _reported(event: Event) -> str:
    """Who said so, when a provider's status callback (not Hub) wrote the event."""
    if event.actor_kind == ActorKind.INBOUND and event.source.endswith(".status"):
        return f"; {delivery_words.capital(event.actor) or 'the provider'} reported it"
    return ""


def _problem(event: Event) -> str:
    """`554: message refused`, from the provider's code and error as the event keeps them."""
    changes = _changes(event)
    code = _text(changes.get("code")) or _text(changes.get("error_code"))
    error = _text(changes.get("error"))
    if code and error and not error.startswith(code):
        return _cut(f"{code}: {error}")
    return _cut(error or code)


def _moment(value: Any, zone: str | None, known: Known) -> str:
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


def _template(sending: Sending) -> Ref:
    key = sending.template_key or ""
    version = f", version {sending.template_version}" if sending.template_version else ""
    return Ref(RefKind.TEMPLATE, key, f"{key}{version}")


def _detail(name: str, change: Any) -> Words:
    if isinstance(change, Mapping) and change.keys() == {"before", "after"}:
        return (f"{_value(change['before'])} → {_value(change['after'])}",)
    if name == "notification_id" and (number := _int(change)) is not None:
        return (Ref(RefKind.NOTIFICATION, str(number), f"#{number}"),)
    return (_value(change),)


def _value(value: Any) -> str:
    if value is None or value in ([], ""):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_value(v)}" for k, v in value.items())
    return str(value)
