"""The person's own events in words (`timeline_words`): added, details changed, subscribed
and unsubscribed (with the door it came through and the reason they gave), preferences,
refusals of a channel and their lifting, and what they wrote to us: "Unsubscribed from
Offers on the preferences page: 'too many e-mails'", "SMS refused from now on: the person
replied STOP"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.domain import ActorKind, Channel, EventType, SubscriptionStatus, SuppressionReason
from hub.services import delivery_words
from hub.services.timeline_phrases import (
    CHANNEL_NOUNS,
    Event,
    Known,
    Words,
    after,
    before,
    capital_noun,
    data,
    noun,
    quoted,
    strings,
    text,
    topic,
)

# The door a change came through (the event's `source`), said after the verb.
DOORS = {
    "console": " in the console",
    "console.import": " by an import in the console",
    "api": " through the API",
    "api.import": " by an import through the API",
    "cli.import": " by an import at the command line",
    "self-service": " on the preferences page",
    "self-service.one-click": " with the one-click unsubscribe link in an e-mail",
    "self-service.mailto": " by mail to the unsubscribe address",
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
    "owner": "owner",
    "teams": "teams",
}
# A change Hub made because something else went: said instead of the fields.
CONSEQUENCES = {
    "owner_erased": "Owner removed: the owner's record was erased",
    "team_deleted": "Removed from a team: the team was deleted",
}
KEYWORDS = {
    "stop": "they asked for no more SMS",
    "start": "they asked for SMS again",
}
FREQUENCIES = {"immediate": "it happens", "daily": "a daily digest", "weekly": "a weekly digest"}


def _created(event: Event, known: Known) -> Words:
    kind = after(data(event).get("kind"))
    what = f"Added as {'an' if kind == 'employee' else 'a'} {kind}" if kind else "Added to Hub"
    return (what, _door(event))


def _updated(event: Event, known: Known) -> Words:
    if event.reason in CONSEQUENCES:
        return (CONSEQUENCES[event.reason], _door(event))
    names = [_field_name(str(name)) for name in data(event)]
    said = delivery_words.listed(names)
    return ("Details changed", _door(event), f": {said}" if said else "")


def _subscription(event: Event, known: Known) -> Words:
    changes = data(event)
    status = changes.get("status")
    was, now = before(status), after(status)
    about = topic(event, known)
    channels = _channels(after(changes.get("channels")))
    then: list[str] = []  # said after the door: "...on the subscribe form; a confirmation..."
    if now == SubscriptionStatus.SUBSCRIBED:
        if was == SubscriptionStatus.PENDING:
            head: Words = ("Confirmed the subscription to ", *about)
        else:
            again = " again" if was == SubscriptionStatus.UNSUBSCRIBED else ""
            head = (f"Subscribed{again} to ", *about, f" by {channels}" if channels else "")
    elif now == SubscriptionStatus.UNSUBSCRIBED:
        head = ("Unsubscribed from ", *about)
    elif now == SubscriptionStatus.PENDING:
        head = ("Asked to subscribe to ", *about)
        then.append("; a confirmation e-mail was sent")
    else:
        head = ("Subscription to ", *about, " changed")
        frequency = FREQUENCIES.get(str(after(changes.get("frequency"))))
        parts = [f"by {channels}" if channels else "", f"as {frequency}" if frequency else ""]
        if said := ", ".join(p for p in parts if p):
            then.append(f": {said}")
    note = event.reason if event.reason not in {"confirmation_sent", "double_opt_in"} else None
    if note:
        then.append(f": {quoted(note)}")
    return (*head, _door(event), *then)


def _preferences(event: Event, known: Known) -> Words:
    changes = data(event)
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
        old, new = set(strings(blocked.get("before"))), set(strings(blocked.get("after")))
        if off := sorted(new - old):
            said.append(f"turned off {_channels(off, plural=True)}")
        if on := sorted(old - new):
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
    tracking = changes.get("tracking_off")
    if isinstance(tracking, Mapping) and "after" in tracking:
        said.append(
            "turned tracking of opens and clicks off"
            if tracking["after"] is True
            else "turned tracking of opens and clicks back on"
        )
    if len(said) == 1:
        return (delivery_words.capital(said[0]), _door(event))
    return ("Preferences changed", _door(event), f": {'; '.join(said)}" if said else "")


def _suppressed(event: Event, known: Known) -> Words:
    reason = event.reason or ""
    why = delivery_words.SUPPRESSIONS.get(reason, reason.replace("_", " "))
    note = text(data(event).get("note"))
    if reason == SuppressionReason.MANUAL and note:
        why = f"{why}: {quoted(note)}"
    span = "for a while" if reason == SuppressionReason.COOL_DOWN else "from now on"
    return (f"{capital_noun(event)} refused {span}", f": {why}" if why else "")


def _unsuppressed(event: Event, known: Known) -> Words:
    if event.actor_kind == ActorKind.INBOUND and event.channel == Channel.SMS:
        return (f"{capital_noun(event)} allowed again: the person replied START",)
    reason = event.reason or ""
    was = delivery_words.SUPPRESSIONS.get(reason, reason.replace("_", " "))
    lifted = f": the refusal ({was}) was lifted"
    return (f"{capital_noun(event)} allowed again", _door(event), lifted)


def _inbound(event: Event, known: Known) -> Words:
    body = text(data(event).get("body"))
    means = KEYWORDS.get(event.reason or "")
    return (
        f"Replied by {noun(event)}",
        f": {quoted(body)}" if body else "",
        f" ({means})" if means else "",
    )


SAYERS: dict[str, Callable[[Event, Known], Words]] = {
    EventType.CONTACT_CREATED: _created,
    EventType.CONTACT_UPDATED: _updated,
    EventType.SUBSCRIPTION_CHANGED: _subscription,
    EventType.PREFERENCES_CHANGED: _preferences,
    EventType.SUPPRESSION_ADDED: _suppressed,
    EventType.SUPPRESSION_REMOVED: _unsuppressed,
    EventType.INBOUND_MESSAGE: _inbound,
}


def _channels(value: Any, *, plural: bool = False) -> str:
    """`e-mail and SMS` for ["email", "sms"] (`e-mails and SMS` when `plural`); "" for none."""
    names = [
        delivery_words.NOUNS[c][1]
        if plural and c in delivery_words.NOUNS
        else CHANNEL_NOUNS.get(c, c)
        for c in strings(value)
    ]
    return delivery_words.listed(names)


def _field_name(name: str) -> str:
    if name.startswith("attributes."):
        return f"attribute {quoted(name.removeprefix('attributes.'))}"
    return FIELD_NAMES.get(name, name.replace("_", " "))


def _door(event: Event) -> str:
    return DOORS.get(event.source, "")
