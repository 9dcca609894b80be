"""Delivery events in words (`timeline_words`): what became of one message to one person,
to which address, for which campaign or topic and notification, and why: "E-mail sent to
ada@example.com for campaign 'Spring offer' (notification #3)", "SMS to +4915123456789
refused for ...: the address is suppressed: the person replied STOP"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hub.domain import (
    ActorKind,
    Channel,
    DeferralReason,
    DeliveryNote,
    DeliveryState,
    EscalationUnless,
    EventType,
    FailureReason,
    MachineReason,
    SuppressionReason,
)
from hub.services import delivery_words
from hub.services.timeline_phrases import (
    Event,
    Known,
    Words,
    capital_noun,
    cut,
    data,
    integer,
    moment,
    sent_for,
    text,
    to,
)

BOUNCES: dict[str, str] = {
    SuppressionReason.HARD_BOUNCE: "bounced for good (hard bounce)",
    SuppressionReason.SOFT_BOUNCE: "bounced for now (soft bounce)",
    SuppressionReason.COMPLAINT: "was marked as spam (a complaint)",
    FailureReason.BLOCKED: "was blocked by the receiving server as spam or by policy",
}


def _sent(event: Event, known: Known) -> Words:
    head = "Call made" if event.channel == Channel.VOICE else f"{capital_noun(event)} sent"
    changes = data(event)
    digest = changes.get("digest")
    items = digest.get("items") if isinstance(digest, Mapping) else None
    tail = f", in one digest of {items} messages" if isinstance(items, int) and items > 1 else ""
    return (
        head,
        *to(event, known),
        *sent_for(event, known),
        tail,
        _escalated(event),
        _attempt(event),
        _reported(event),
    )


def _delivered(event: Event, known: Known) -> Words:
    verb = "answered" if event.channel == Channel.VOICE else "delivered"
    head, detail = delivery_words.split(event.reason)
    how = ""
    if head == DeliveryNote.ANSWERED_BY and detail:
        how = f": answered by {detail.replace('_', ' ')}, not a person"
    return (
        capital_noun(event),
        *to(event, known),
        f" {verb}",
        *sent_for(event, known),
        how,
        _reported(event),
    )


def _bounced(event: Event, known: Known) -> Words:
    changes = data(event)
    what = BOUNCES.get(event.reason or "", "bounced")
    if event.reason == SuppressionReason.SOFT_BOUNCE and changes.get("failed") is True:
        cause = delivery_words.SOFT_CAUSES.get(text(changes.get("cause")))
        what = f"could not be delivered (soft bounce: {cause})" if cause else "failed (soft bounce)"
    said = text(changes.get("detail")) or text(changes.get("status"))
    again = changes.get("counted") is False
    return (
        capital_noun(event),
        *to(event, known),
        f" {what}",
        *sent_for(event, known),
        f": {cut(said)}" if said else "",
        "; not counted again: a soft bounce of this address counted today already" if again else "",
    )


def _failed(event: Event, known: Known) -> Words:
    why = delivery_words.reason_words(DeliveryState.FAILED, event.reason)
    problem = _problem(event)
    if why and problem:
        why = f"{why} ({problem})"
    return (
        capital_noun(event),
        *to(event, known),
        " failed",
        *sent_for(event, known),
        f": {why or problem}" if why or problem else "",
        _attempt(event),
    )


def _retrying(event: Event, known: Known) -> Words:
    changes = data(event)
    paused = changes.get("channel_paused") is True
    why = "the channel is paused" if paused else _problem(event)
    again = moment(changes.get("retry_at"), None, known)
    return (
        capital_noun(event),
        *to(event, known),
        " not sent yet",
        *sent_for(event, known),
        f": {why}" if why else "",
        f"; Hub tries again at {again}" if again else "; Hub tries again later",
        _attempt(event),
    )


def _unknown(event: Event, known: Known) -> Words:
    changes = data(event)
    why = delivery_words.reason_words(DeliveryState.UNKNOWN, event.reason)
    if changes.get("resending") is True:
        why = "the worker stopped while sending; Hub sends it again under the same key"
    again = moment(changes.get("retry_at"), None, known)
    if not why:
        why = _problem(event) or "the provider's answer was lost"
    return (
        capital_noun(event),
        *to(event, known),
        " may or may not have gone",
        *sent_for(event, known),
        f": {why}",
        f"; Hub tries again at {again}" if again else "",
        _attempt(event),
    )


def _refused(event: Event, known: Known) -> Words:
    why = _stopped(event, known) or delivery_words.reason_words(
        DeliveryState.SUPPRESSED, event.reason
    )
    return (
        capital_noun(event),
        *to(event, known),
        " refused",
        *sent_for(event, known),
        f": {why}" if why else "",
    )


def _deferred(event: Event, known: Known) -> Words:
    head, _ = delivery_words.split(event.reason)
    waits = delivery_words.WAITS.get(head, head.replace("_", " ")) if head else ""
    local = head in delivery_words.LOCAL_WAITS
    until = moment(data(event).get("until"), known.zone if local else None, known)
    why = f"it waits for {waits}" if waits else "it waits"
    if until and head != DeferralReason.PAUSED:
        why += f", until {until}"
    return (
        capital_noun(event),
        *to(event, known),
        " held back",
        *sent_for(event, known),
        f": {why}",
    )


SAYERS: dict[str, Callable[[Event, Known], Words]] = {
    EventType.DELIVERY_SENT: _sent,
    EventType.DELIVERY_DELIVERED: _delivered,
    EventType.DELIVERY_BOUNCED: _bounced,
    EventType.DELIVERY_FAILED: _failed,
    EventType.DELIVERY_RETRYING: _retrying,
    EventType.DELIVERY_UNKNOWN: _unknown,
    EventType.DELIVERY_REFUSED: _refused,
    EventType.DELIVERY_DEFERRED: _deferred,
    EventType.DELIVERY_OPENED: lambda event, known: _engaged(event, known, " opened"),
    EventType.DELIVERY_CLICKED: lambda event, known: _engaged(event, known, " link followed"),
}

# Why an open or click is counted as a machine's (hub.domain.MachineReason), in words.
MACHINE: dict[str, str] = {
    MachineReason.PRIVACY_PROXY: "a privacy proxy, which fetches every image, read or not",
    MachineReason.SCANNER_AGENT: "a link scanner or script, by its user agent",
    MachineReason.HEAD_REQUEST: "a link check (HEAD request), not a visit",
    MachineReason.TOO_SOON: "seconds after sending, before a person could have read it",
    MachineReason.ALL_LINKS: "several links of the message at once: a mail filter's scanner",
}


def _engaged(event: Event, known: Known, verb: str) -> Words:
    changes = data(event)
    link = text(changes.get("link"))
    machine = changes.get("machine") is True
    by = MACHINE.get(event.reason or "", "a machine") if machine else ""
    agent = text(changes.get("agent"))
    return (
        capital_noun(event),
        verb,
        *sent_for(event, known),
        f": {cut(link)}" if link else "",
        f" (by a machine: {by}; not counted as the person's)" if machine else "",
        f" ({agent.replace('_', ' ')})" if agent and not machine and agent != "unknown" else "",
    )


# What an earlier step of an escalation chain did that stopped a later one (escalation.Stop).
CHAIN_STOPS: dict[str, str] = {
    "delivered": "was delivered",
    "accepted": "was accepted by the provider",
    "opened": "was opened",
    "clicked": "had a link followed",
}
# What a later step went for want of, by its `unless` (EscalationUnless).
CHAIN_UNMET: dict[str, str] = {
    EscalationUnless.REACHED: "did not reach the person",
    EscalationUnless.OPENED: "was not opened",
    EscalationUnless.CLICKED: "had no link followed",
}


def _escalated(event: Event) -> str:
    """`, step 2 of its escalation: the e-mail before it was not opened within 30 minutes`."""
    check = data(event).get("escalation")
    if not isinstance(check, Mapping) or isinstance(check.get("stopped_by"), Mapping):
        return ""
    step = integer(check.get("step"))
    earlier = [e for e in check.get("earlier") or [] if isinstance(e, Mapping)]
    nouns = delivery_words.listed([f"the {_chain_noun(e.get('channel'))}" for e in earlier])
    unmet = CHAIN_UNMET.get(text(check.get("unless")), "did not reach the person")
    wait = _wait(check.get("waited_seconds", check.get("after_seconds")))
    said = f", step {step + 1} of its escalation" if step is not None else ", in its escalation"
    if nouns:
        said += f": {nouns} before it {unmet}" + (f" within {wait}" if wait else "")
    return said


def _stopped(event: Event, known: Known) -> str:
    """`its escalation stopped here: the e-mail before it was opened at 10:12 Europe/Berlin,
    1 Jul`; "" when the event keeps no escalation check."""
    check = data(event).get("escalation")
    stop = check.get("stopped_by") if isinstance(check, Mapping) else None
    if not isinstance(stop, Mapping):
        return ""
    what = CHAIN_STOPS.get(text(stop.get("what")), "reached the person")
    at = moment(stop.get("at"), known.zone, known)
    noun = _chain_noun(stop.get("channel"))
    return f"its escalation stopped here: the {noun} before it {what}" + (f" at {at}" if at else "")


def _chain_noun(channel: Any) -> str:
    return delivery_words.NOUNS.get(text(channel), (text(channel) or "message", ""))[0]


def _wait(seconds: Any) -> str:
    """`1 day`, `90 minutes`, `2 hours`: the largest unit the wait is a whole number of."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds <= 0:
        return ""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        count = seconds / size
        if count >= 1 and count == int(count):
            return f"{int(count)} {unit}{'' if count == 1 else 's'}"
    whole = int(seconds) if seconds == int(seconds) else round(seconds, 1)
    return f"{whole} second{'' if whole == 1 else 's'}"


def _attempt(event: Event) -> str:
    attempt = integer(data(event).get("attempt"))
    return f", on attempt {attempt}" if attempt is not None and attempt > 1 else ""


def _reported(event: Event) -> str:
    """Who said so, when a provider's status callback (not Hub) wrote the event."""
    if event.actor_kind == ActorKind.INBOUND and event.source.endswith(".status"):
        return f"; {delivery_words.capital(event.actor) or 'the provider'} reported it"
    return ""


def _problem(event: Event) -> str:
    """`554: message refused`, from the provider's code and error as the event keeps them."""
    changes = data(event)
    code = text(changes.get("code")) or text(changes.get("error_code"))
    error = text(changes.get("error"))
    if code and error and not error.startswith(code):
        return cut(f"{code}: {error}")
    return cut(error or code)
