"""Decides, for one contact and one topic at one moment, which channels to use now, later or never.

Pure: everything it needs arrives as the immutable views of `preferences.model`. The rules,
strongest first:

1. The topic must be meant for the contact's kind (`WRONG_AUDIENCE`).
2. A topic that is not required needs a confirmed subscription and no "unsubscribe from
   everything" (`NOT_SUBSCRIBED`, `UNSUBSCRIBED`, `PENDING_CONFIRMATION`, `UNSUBSCRIBED_ALL`).
   A required topic is implicitly subscribed and ignores every unsubscribe. A transactional
   topic with no subscription row at all is implicitly subscribed on its default channels:
   only a sender naming the person gets that far (a message to the whole topic reaches its
   subscribers only), and a password reset must not wait for a subscription. A row that
   says unsubscribed, or "unsubscribe from everything", still refuses.
3. Each candidate channel must be allowed by the topic, not blocked by the person, have an
   address and carry no active suppression (`CHANNEL_NOT_ALLOWED`, `CHANNEL_BLOCKED`,
   `NO_ADDRESS`, `SUPPRESSED`). Suppression beats every subscription; only an erasure lets a
   transactional topic through (RELIABILITY 14).
4. What is left is sent now, or deferred (never dropped) to the first instant at which the
   legal window is open (marketing topics), the person's quiet hours are over and their
   digest is due (RELIABILITY 17). Local times follow the contact's zone, daylight saving
   included.

`required` answers only "may the person unsubscribe?"; the marketing rules (legal window,
frequency caps, an erasure's suppression) follow the topic's category (`TopicView.marketing`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import TypeAlias
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from hub.domain import (
    Channel,
    DeferralReason,
    Frequency,
    RefusalReason,
    SubscriptionStatus,
)
from hub.preferences import windows
from hub.preferences.model import (
    ContactView,
    Deferral,
    History,
    Policy,
    PreferencesView,
    QuietHours,
    Refusal,
    Resolution,
    Step,
    SubscriptionView,
    SuppressionView,
    TopicView,
)
from hub.preferences.trace import Digest, Notes

_Outcome: TypeAlias = Channel | Deferral | Refusal


def resolve(
    *,
    contact: ContactView,
    topic: TopicView,
    subscription: SubscriptionView | None,
    preferences: PreferencesView,
    suppressions: Sequence[SuppressionView],
    moment: dt.datetime,
    policy: Policy = Policy(),  # noqa: B008 - frozen, so one shared default is safe
    trace: list[Step] | None = None,
    history: History | None = None,
) -> Resolution:
    """Sort every candidate channel into exactly one of send now, deferred or refused.

    Candidates are the subscription's channels in order of preference, else the topic's
    default channels, else every channel the topic allows; duplicates keep their first place.
    A refusal of the whole topic lists those candidates (and, for `WRONG_AUDIENCE`, every
    allowed channel too) so that each decision is kept.

    ``trace``, when given, receives a `Step` for every rule looked at (what "explain" shows).

    Raises:
        ValueError: if ``moment`` or a suppression's ``until`` is naive, the contact's time
            zone is unknown, or ``policy.digest_weekday`` is not 0-6.
    """
    note = Notes(trace)
    _require_aware(moment, "moment")
    for suppression in suppressions:
        if suppression.until is not None:
            _require_aware(suppression.until, "suppression until")
    zone = _zone(contact.timezone)
    candidates = _candidates(topic, subscription)

    topic_refusal = _topic_refusal(contact, topic, subscription, preferences)
    note.topic(contact, topic, subscription, topic_refusal)
    if topic_refusal is RefusalReason.WRONG_AUDIENCE:
        return _collect(
            Refusal(c, topic_refusal) for c in _unique(topic.allowed_channels, candidates)
        )
    if topic_refusal is not None:
        return _collect(Refusal(c, topic_refusal) for c in candidates)
    capped_until = _capped(topic, history, moment, note)
    if capped_until is not None and topic.caps.drop:
        return _collect(Refusal(c, RefusalReason.FREQUENCY_CAP) for c in candidates)
    if capped_until is not None:
        moment = capped_until  # every rule below is judged at the moment it may go

    outcomes: list[_Outcome] = []
    for channel in candidates:
        refusal = _channel_refusal(
            channel,
            contact=contact,
            topic=topic,
            preferences=preferences,
            suppressions=suppressions,
            moment=moment,
        )
        if refusal is not None:
            note.refused(refusal)
            outcomes.append(refusal)
            continue
        deferral = _deferral(
            channel,
            topic=topic,
            subscription=subscription,
            preferences=preferences,
            policy=policy,
            zone=zone,
            moment=moment,
            note=note,
        )
        if capped_until is not None:
            until = deferral.until if deferral is not None else capped_until
            deferral = Deferral(channel, until, DeferralReason.FREQUENCY_CAP)
        outcomes.append(channel if deferral is None else deferral)
    return _collect(outcomes)


def _capped(
    topic: TopicView, history: History | None, moment: dt.datetime, note: Notes
) -> dt.datetime | None:
    """When a marketing message over the frequency cap may go; None when it is under it.

    A transactional topic is never capped. The windows roll: the message may go once the
    oldest counted message is a day (or a week) old.
    """
    caps = topic.caps
    if not topic.marketing or not caps.active:
        return None
    seen = history or History()
    until: dt.datetime | None = None
    for cap, count, oldest, span, name in (
        (caps.per_day, seen.day, seen.day_oldest, dt.timedelta(days=1), "day"),
        (caps.per_week, seen.week, seen.week_oldest, dt.timedelta(days=7), "week"),
    ):
        if cap is None:
            continue
        over = count >= cap
        note.step(
            "frequency_cap",
            ("refuse" if caps.drop else "defer") if over else "pass",
            f"{count} of {cap} marketing messages in the last {name}",
        )
        if over:
            free = (oldest or moment) + span
            until = free if until is None else max(until, free)
    return None if until is None else max(until, moment)


def _require_aware(value: dt.datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value!r}")


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def _unique(*groups: Iterable[Channel]) -> tuple[Channel, ...]:
    return tuple(dict.fromkeys(channel for group in groups for channel in group))


def _candidates(topic: TopicView, subscription: SubscriptionView | None) -> tuple[Channel, ...]:
    if subscription is not None and subscription.channels:
        return _unique(subscription.channels)
    return _unique(topic.default_channels or topic.allowed_channels)


def _topic_refusal(
    contact: ContactView,
    topic: TopicView,
    subscription: SubscriptionView | None,
    preferences: PreferencesView,
) -> RefusalReason | None:
    if not topic.audience.includes(contact.kind):
        return RefusalReason.WRONG_AUDIENCE
    if topic.required:
        return None  # implicitly subscribed; no unsubscribe reaches it
    return _consent_refusal(topic, subscription, preferences)


_STATUS_REFUSAL: Mapping[SubscriptionStatus, RefusalReason] = {
    SubscriptionStatus.UNSUBSCRIBED: RefusalReason.UNSUBSCRIBED,
    SubscriptionStatus.PENDING: RefusalReason.PENDING_CONFIRMATION,
}


def _consent_refusal(
    topic: TopicView, subscription: SubscriptionView | None, preferences: PreferencesView
) -> RefusalReason | None:
    """Why a topic that is not required may not be used at all, if it may not."""
    if subscription is None:
        if topic.marketing:
            return RefusalReason.NOT_SUBSCRIBED  # marketing always needs the person's yes
        # Transactional and never asked about: a person named by the sender gets it on the
        # topic's defaults, unless they left everything (issue 19, item 3).
        return RefusalReason.UNSUBSCRIBED_ALL if preferences.unsubscribed_all else None
    if subscription.status in _STATUS_REFUSAL:
        return _STATUS_REFUSAL[subscription.status]
    if preferences.unsubscribed_all:
        return RefusalReason.UNSUBSCRIBED_ALL
    if not subscription.channels:
        # Subscribed to the topic on no channel at all: nothing was asked for.
        return RefusalReason.NOT_SUBSCRIBED
    return None


def _channel_refusal(
    channel: Channel,
    *,
    contact: ContactView,
    topic: TopicView,
    preferences: PreferencesView,
    suppressions: Sequence[SuppressionView],
    moment: dt.datetime,
) -> Refusal | None:
    if channel not in topic.allowed_channels:
        return Refusal(channel, RefusalReason.CHANNEL_NOT_ALLOWED)
    if channel in preferences.blocked_channels:
        return Refusal(channel, RefusalReason.CHANNEL_BLOCKED)
    if not contact.addresses.get(channel, "").strip():
        return Refusal(channel, RefusalReason.NO_ADDRESS)
    suppression = _blocking_suppression(channel, topic, suppressions, moment)
    if suppression is not None:
        return Refusal(channel, RefusalReason.SUPPRESSED, detail=suppression.reason.value)
    return None


def _blocking_suppression(
    channel: Channel,
    topic: TopicView,
    suppressions: Sequence[SuppressionView],
    moment: dt.datetime,
) -> SuppressionView | None:
    for suppression in suppressions:
        if suppression.channel != channel:
            continue
        if suppression.until is not None and suppression.until <= moment:
            continue  # expired
        if not topic.marketing and not suppression.reason.blocks_transactional:
            continue  # an erased person still gets their password reset
        return suppression
    return None


def _deferral(
    channel: Channel,
    *,
    topic: TopicView,
    subscription: SubscriptionView | None,
    preferences: PreferencesView,
    policy: Policy,
    zone: ZoneInfo,
    moment: dt.datetime,
    note: Notes,
) -> Deferral | None:
    rules = _closed_windows(channel, topic=topic, preferences=preferences, policy=policy)
    digest = _digest(topic, subscription, preferences, policy)
    closed = [window for _, window in rules]
    if digest is None:
        until = windows.next_open(moment, zone, closed)
    else:
        until = windows.next_due(moment, zone, at=digest.at, weekday=digest.weekday, windows=closed)
    note.windows(channel, rules, digest, zone=zone, moment=moment, until=until)
    if until == moment:
        return None
    reason = _main_reason(rules, digest, zone=zone, moment=moment)
    return Deferral(channel, until.astimezone(dt.UTC), reason)


def _main_reason(
    rules: Sequence[tuple[DeferralReason, QuietHours]],
    digest: Digest | None,
    *,
    zone: ZoneInfo,
    moment: dt.datetime,
) -> DeferralReason:
    """Of the rules holding the channel back at ``moment``, the one that alone holds it longest.

    A weekly digest that is also outside the legal window is a digest, not a legal matter;
    on a tie the stronger rule (legal window, then quiet hours, then digest) is named.
    """
    held: list[tuple[dt.datetime, DeferralReason]] = []
    for reason, window in rules:
        end = windows.release(window, moment, zone)
        if end is not None:
            held.append((end, reason))
    if digest is not None:
        due = windows.next_due(moment, zone, at=digest.at, weekday=digest.weekday, windows=())
        if due > moment:
            held.append((due, DeferralReason.DIGEST))
    # max() keeps the first of equals, and `held` is in order of strength.
    return max(held, key=lambda item: item[0])[1]


def _closed_windows(
    channel: Channel,
    *,
    topic: TopicView,
    preferences: PreferencesView,
    policy: Policy,
) -> list[tuple[DeferralReason, QuietHours]]:
    """The local-time windows in which ``channel`` may not be used, strongest rule first."""
    rules: list[tuple[DeferralReason, QuietHours]] = []
    legal = policy.legal_window
    if (
        topic.marketing
        and channel in policy.legal_window_channels
        and legal is not None
        and not windows.is_empty(legal)
    ):
        rules.append((DeferralReason.LEGAL_WINDOW, windows.complement(legal)))
    quiet = preferences.quiet_hours
    if quiet is not None and not topic.bypass_quiet_hours and not windows.is_empty(quiet):
        with_quiet = [*rules, (DeferralReason.QUIET_HOURS, quiet)]
        # Quiet hours that cover every legal hour would hold the message forever; the law
        # is the binding limit, so it alone applies then.
        if not windows.covers_whole_day([window for _, window in with_quiet]):
            rules = with_quiet
    return rules


def _digest(
    topic: TopicView,
    subscription: SubscriptionView | None,
    preferences: PreferencesView,
    policy: Policy,
) -> Digest | None:
    """When the person's digest goes: at their own time if they chose one, else the hub's."""
    if topic.required or subscription is None:
        return None
    at = preferences.digest_time or policy.digest_time
    if subscription.frequency is Frequency.DAILY:
        return Digest(at, None)
    if subscription.frequency is Frequency.WEEKLY:
        weekday = preferences.digest_weekday
        return Digest(at, policy.digest_weekday if weekday is None else weekday)
    return None


def _collect(outcomes: Iterable[_Outcome]) -> Resolution:
    send_now: list[Channel] = []
    deferred: list[Deferral] = []
    refused: list[Refusal] = []
    for outcome in outcomes:
        if isinstance(outcome, Deferral):
            deferred.append(outcome)
        elif isinstance(outcome, Refusal):
            refused.append(outcome)
        else:
            send_now.append(outcome)
    return Resolution(send_now=tuple(send_now), deferred=tuple(deferred), refused=tuple(refused))
