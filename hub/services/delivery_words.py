"""A delivery's state and reason in plain words, for the console's reports and pages.

The stored `reason` is the API's (`suppressed:hard_bounce`, `legal_window`, `twilio:busy`,
see `hub.domain.delivery_reason`); staff read "the address is suppressed: it bounced for
good" instead. The legal window is named with its hours from the resolver's own policy, so
the words cannot drift from the rule.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.domain import (
    Channel,
    DeferralReason,
    DeliveryNote,
    DeliveryState,
    FailureReason,
    RefusalReason,
    SoftBounceCause,
    SuppressionReason,
    WithdrawalReason,
)
from hub.preferences.model import Policy

_POLICY = Policy()

NOUNS: dict[str, tuple[str, str]] = {
    Channel.EMAIL: ("e-mail", "e-mails"),
    Channel.SMS: ("SMS", "SMS"),
    Channel.VOICE: ("call", "calls"),
    Channel.WEBHOOK: ("webhook", "webhooks"),
}

STATES: dict[str, str] = {
    DeliveryState.QUEUED: "queued for a worker",
    DeliveryState.SENDING: "being sent",
    DeliveryState.SENT: "sent",
    DeliveryState.DELIVERED: "delivered",
    DeliveryState.FAILED: "failed",
    DeliveryState.BOUNCED: "bounced",
    DeliveryState.SUPPRESSED: "not sent (refused)",
    DeliveryState.DEFERRED: "waiting",
    DeliveryState.UNKNOWN: "unknown: the provider may or may not have it",
}

SUPPRESSIONS: dict[str, str] = {
    SuppressionReason.HARD_BOUNCE: "it bounced for good (hard bounce)",
    SuppressionReason.SOFT_BOUNCE: "it bounced softly again and again",
    SuppressionReason.COMPLAINT: "the person marked a message as spam",
    SuppressionReason.SMS_STOP: "the person replied STOP",
    SuppressionReason.VOICE_OPT_OUT: "the person opted out of calls",
    SuppressionReason.CARRIER_OPT_OUT: "the carrier says the number opted out",
    SuppressionReason.ENDPOINT_GONE: "the webhook answered 410 Gone",
    SuppressionReason.MANUAL: "staff suppressed it",
    SuppressionReason.ERASURE: "the person was erased",
    SuppressionReason.COOL_DOWN: "a refusal was lifted and a cool-down runs",
}

REFUSALS: dict[str, str] = {
    RefusalReason.WRONG_AUDIENCE: "the topic is not for people of their kind",
    RefusalReason.NOT_SUBSCRIBED: "not subscribed to the topic",
    RefusalReason.PENDING_CONFIRMATION: "has not confirmed the subscription yet (double opt-in)",
    RefusalReason.UNSUBSCRIBED: "unsubscribed from the topic",
    RefusalReason.UNSUBSCRIBED_ALL: "unsubscribed from everything",
    RefusalReason.CHANNEL_NOT_ALLOWED: "the topic does not allow this channel",
    RefusalReason.CHANNEL_BLOCKED: "the person turned this channel off",
    RefusalReason.NO_ADDRESS: "no address for this channel",
    RefusalReason.SUPPRESSED: "the address is suppressed",
    RefusalReason.NO_CONTENT: "the template has no part for this channel",
    RefusalReason.FREQUENCY_CAP: "over the topic's frequency cap (set to drop)",
    WithdrawalReason.CHAIN_STOPPED: "an earlier step of its escalation did what this step "
    "waited for (reached the person, or was opened or clicked)",
    WithdrawalReason.CONTACT_ERASED: "the person was erased",
    WithdrawalReason.CANCELLED: "the campaign was cancelled",
}

FAILURES: dict[str, str] = {
    FailureReason.REJECTED: "the provider refused this message",
    FailureReason.GAVE_UP: "it kept failing for a passing reason; Hub gave up after its retries",
    FailureReason.NO_ANSWER: "no answer came; not resent, so as not to reach the person twice",
    FailureReason.WORKER_LOST: "the worker stopped while sending, on a channel not safe to resend",
    FailureReason.TWILIO: "Twilio reported it",
    FailureReason.BLOCKED: "blocked by the receiving server as spam or by policy",
    DeliveryNote.ANSWERED_BY: "answered by",
}

# Why a soft bounce was final (`soft_bounce:<cause>` on a failed delivery).
SOFT_CAUSES: dict[str, str] = {
    SoftBounceCause.MAILBOX_FULL: "the mailbox is full",
    SoftBounceCause.TOO_LARGE: "the message is too large for the mailbox",
    SoftBounceCause.EXPIRED: "a relay gave up after retrying",
}
SOFT_FAILED = "it came back (a soft bounce)"

_LEGAL = _POLICY.legal_window
LEGAL_HOURS = f"{_LEGAL.start:%H:%M}\N{EN DASH}{_LEGAL.end:%H:%M}" if _LEGAL else "none"

WAITS: dict[str, str] = {
    DeferralReason.LEGAL_WINDOW: (
        f"the legal window for marketing SMS and calls ({LEGAL_HOURS} in each person's time zone)"
    ),
    DeferralReason.QUIET_HOURS: "the end of the person's quiet hours",
    DeferralReason.DIGEST: "the person's digest (they asked for a daily or weekly summary)",
    DeferralReason.LOCAL_TIME: "the campaign's send time in each person's own time zone",
    DeferralReason.THROTTLED: "their turn under the campaign's throttle (messages a minute)",
    DeferralReason.PAUSED: "the campaign to be resumed (it is paused)",
    DeferralReason.FREQUENCY_CAP: "room under the frequency cap (the oldest message to age out)",
    DeferralReason.ESCALATION: "their turn in an escalation chain (an earlier step goes first)",
}
# Reasons whose moment is a local wall-clock time: said in the person's own zone.
LOCAL_WAITS = frozenset(
    {
        DeferralReason.LEGAL_WINDOW,
        DeferralReason.QUIET_HOURS,
        DeferralReason.DIGEST,
        DeferralReason.LOCAL_TIME,
    }
)


def split(reason: str | None) -> tuple[str, str | None]:
    """A stored reason as (reason, detail): `suppressed:hard_bounce` gives both parts."""
    if not reason:
        return "", None
    head, _, detail = reason.partition(":")
    return head, detail or None


def reason_words(state: DeliveryState, reason: str | None) -> str:
    """Why a delivery is where it is, in words; "" when nothing needs saying."""
    head, detail = split(reason)
    if not head:
        return ""
    if state is DeliveryState.DEFERRED:
        return f"waits for {WAITS.get(head, head.replace('_', ' '))}"
    if state is DeliveryState.FAILED and head == SuppressionReason.SOFT_BOUNCE:
        cause = SOFT_CAUSES.get(detail or "", (detail or "").replace("_", " "))
        return f"{SOFT_FAILED}: {cause}" if cause else SOFT_FAILED
    if head == RefusalReason.SUPPRESSED and detail:
        return f"{REFUSALS[head]}: {SUPPRESSIONS.get(detail, detail.replace('_', ' '))}"
    for table in (REFUSALS, SUPPRESSIONS, FAILURES):
        if head in table:
            words = table[head]
            return f"{words}: {detail.replace('_', ' ')}" if detail else words
    return reason or ""


def capital(text: str) -> str:
    """The first letter up, the rest as it is (Jinja's `capitalize` would write "Sms")."""
    return text[:1].upper() + text[1:]


def counted(count: int, channel: str) -> str:
    """`3 e-mails`, `1 SMS`, `2 calls`."""
    one, many = NOUNS.get(channel, (channel, channel))
    return f"{count} {one if count == 1 else many}"


def listed(parts: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def moment(at: dt.datetime, zone: str | None, *, now: dt.datetime) -> str:
    """`08:00 Europe/Berlin, 7 Dec` (the year too when it is not this one); in UTC when the
    zone is None or unknown."""
    try:
        tz = ZoneInfo(zone) if zone else dt.UTC
    except (ZoneInfoNotFoundError, ValueError):
        tz, zone = dt.UTC, None
    local = at.astimezone(tz)
    year = f" {local.year}" if local.year != now.astimezone(tz).year else ""
    return f"{local:%H:%M} {zone or 'UTC'}, {local.day} {local:%b}{year}"


def waiting_sentence(
    reason: str,
    by_channel: dict[str, int],
    *,
    first: tuple[dt.datetime, str | None] | None,
    last: tuple[dt.datetime, str | None] | None,
    now: dt.datetime,
) -> str:
    """ "31 SMS wait for the legal window (08:00-21:00 in each person's time zone); the first
    go at 08:00 Europe/Berlin, 7 Dec, the last at 08:00 America/Chicago, 7 Dec."

    `first` and `last` are the earliest and latest moments with the time zone of the person
    they belong to (used only for the reasons that follow local time).
    """
    total = sum(by_channel.values())
    what = listed([counted(n, ch) for ch, n in by_channel.items()])
    verb = "waits" if total == 1 else "wait"
    sentence = f"{what} {verb} for {WAITS.get(reason, reason.replace('_', ' '))}"
    if reason == DeferralReason.PAUSED or first is None or last is None:
        return sentence + "."
    local = reason in LOCAL_WAITS

    def said(point: tuple[dt.datetime, str | None]) -> str:
        at, zone = point
        if at <= now:  # due already: the sweeper hands it to a worker on its next round
            return "now"
        return "at " + moment(at, zone if local else None, now=now)

    if total == 1 or first == last:
        go = "it goes" if total == 1 else "they all go"
        return f"{sentence}; {go} {said(first)}."
    return f"{sentence}; the first go {said(first)}, the last {said(last)}."
