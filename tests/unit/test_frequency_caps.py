"""Frequency caps in the resolver (pure, with a controllable moment): at most N marketing
messages per person per rolling day and week; over it a message waits or is refused."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from hub.domain import Channel, DeferralReason, RefusalReason, TopicCategory
from hub.preferences.model import (
    Caps,
    Deferral,
    History,
    PreferencesView,
    QuietHours,
    Resolution,
    Step,
    TopicView,
)
from hub.preferences.resolver import resolve
from tests.unit.test_resolver import CONTACT, NOON, OFFERS, RECEIPTS, SUBSCRIBED

EMAIL, SMS = Channel.EMAIL, Channel.SMS
EARLIER = NOON - dt.timedelta(hours=3)


NO_PREFERENCES = PreferencesView()


def decide(
    topic: TopicView = OFFERS,
    history: History | None = None,
    preferences: PreferencesView = NO_PREFERENCES,
    trace: list[Step] | None = None,
) -> Resolution:
    return resolve(
        contact=CONTACT,
        topic=topic,
        subscription=SUBSCRIBED,
        preferences=preferences,
        suppressions=(),
        moment=NOON,
        history=history,
        trace=trace,
    )


def test_under_the_cap_the_message_goes() -> None:
    capped = replace(OFFERS, caps=Caps(per_day=2))
    assert decide(capped, History(day=1, week=1, day_oldest=EARLIER)).send_now == (EMAIL, SMS)


def test_at_the_daily_cap_it_waits_until_the_oldest_message_is_a_day_old() -> None:
    capped = replace(OFFERS, caps=Caps(per_day=1))
    until = (EARLIER + dt.timedelta(days=1)).astimezone(dt.UTC)
    resolution = decide(capped, History(day=1, week=1, day_oldest=EARLIER, week_oldest=EARLIER))
    assert resolution.send_now == ()
    assert resolution.deferred == (
        Deferral(EMAIL, until, DeferralReason.FREQUENCY_CAP),
        Deferral(SMS, until, DeferralReason.FREQUENCY_CAP),
    )


def test_the_weekly_cap_counts_too_and_the_later_release_wins() -> None:
    capped = replace(OFFERS, caps=Caps(per_day=5, per_week=3))
    week_oldest = NOON - dt.timedelta(days=6)
    seen = History(day=1, week=3, day_oldest=EARLIER, week_oldest=week_oldest)
    (first, _) = decide(capped, seen).deferred
    assert first.until == (week_oldest + dt.timedelta(days=7)).astimezone(dt.UTC)


def test_with_drop_the_message_over_the_cap_is_refused() -> None:
    capped = replace(OFFERS, caps=Caps(per_day=1, drop=True))
    resolution = decide(capped, History(day=1, week=1, day_oldest=EARLIER))
    assert {(r.channel, r.reason) for r in resolution.refused} == {
        (EMAIL, RefusalReason.FREQUENCY_CAP),
        (SMS, RefusalReason.FREQUENCY_CAP),
    }


def test_a_required_topic_is_never_capped() -> None:
    capped = replace(RECEIPTS, caps=Caps(per_day=1))
    assert decide(capped, History(day=9, week=9, day_oldest=EARLIER)).send_now == (EMAIL, SMS)


def test_caps_follow_the_category_not_required() -> None:
    """An optional transactional topic is never capped; a marketing one always is."""
    over = History(day=9, week=9, day_oldest=EARLIER)
    orders = replace(OFFERS, caps=Caps(per_day=1), category=TopicCategory.TRANSACTIONAL)
    assert decide(orders, over).send_now == (EMAIL, SMS)
    marketing = replace(RECEIPTS, caps=Caps(per_day=1), category=TopicCategory.MARKETING)
    held = decide(marketing, over)
    assert held.send_now == ()
    assert {(d.channel, d.reason) for d in held.deferred} == {
        (EMAIL, DeferralReason.FREQUENCY_CAP),
        (SMS, DeferralReason.FREQUENCY_CAP),
    }


def test_when_the_cap_lifts_inside_quiet_hours_it_waits_for_the_morning() -> None:
    capped = replace(OFFERS, caps=Caps(per_day=1))
    night = NOON.replace(hour=23) - dt.timedelta(days=1)  # lifts at 23:00 local tonight
    quiet = PreferencesView(quiet_hours=QuietHours(dt.time(22), dt.time(7)))
    (email, _) = decide(capped, History(day=1, day_oldest=night), quiet).deferred
    assert email.reason is DeferralReason.FREQUENCY_CAP
    morning = NOON.replace(hour=7) + dt.timedelta(days=1)
    assert email.until == morning.astimezone(dt.UTC)


def test_the_cap_is_in_the_explanation() -> None:
    steps: list[Step] = []
    decide(replace(OFFERS, caps=Caps(per_day=1)), History(day=1, day_oldest=EARLIER), trace=steps)
    cap = next(s for s in steps if s.rule == "frequency_cap")
    assert (cap.verdict, cap.detail) == ("defer", "1 of 1 marketing messages in the last day")
