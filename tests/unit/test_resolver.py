"""The preference resolver: one example per rule, then RELIABILITY 14's invariants as properties."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain import (
    Audience,
    Channel,
    ContactKind,
    DeferralReason,
    Frequency,
    RefusalReason,
    SubscriptionStatus,
    SuppressionReason,
    TopicCategory,
)
from hub.preferences.model import (
    ContactView,
    Deferral,
    Policy,
    PreferencesView,
    QuietHours,
    Refusal,
    Resolution,
    SubscriptionView,
    SuppressionView,
    TopicView,
)
from hub.preferences.resolver import resolve

UTC = dt.UTC
EMAIL, SMS, VOICE, WEBHOOK = Channel.EMAIL, Channel.SMS, Channel.VOICE, Channel.WEBHOOK
NEW_YORK = "America/New_York"

CONTACT = ContactView(
    kind=ContactKind.CLIENT,
    timezone=NEW_YORK,
    addresses={EMAIL: "ada@example.org", SMS: "+12025550143", VOICE: "+12025550143"},
)
OFFERS = TopicView(
    key="offers",
    audience=Audience.ALL,
    allowed_channels=(EMAIL, SMS, VOICE),
    default_channels=(EMAIL,),
)
RECEIPTS = TopicView(
    key="receipts",
    audience=Audience.ALL,
    allowed_channels=(EMAIL, SMS),
    default_channels=(EMAIL, SMS),
    required=True,
)
# Optional, yet transactional: people may leave it, and it is never held like marketing.
ORDERS = TopicView(
    key="orders",
    audience=Audience.ALL,
    allowed_channels=(EMAIL, SMS),
    default_channels=(EMAIL, SMS),
    category=TopicCategory.TRANSACTIONAL,
)
SUBSCRIBED = SubscriptionView(SubscriptionStatus.SUBSCRIBED, (EMAIL, SMS))
OVERNIGHT = QuietHours(dt.time(22), dt.time(7))


def local(*when: int, zone: str = NEW_YORK, fold: int = 0) -> dt.datetime:
    """A wall-clock time in ``zone``: (year, month, day[, hour[, minute[, second]]])."""
    year, month, day, hour, minute, second = (*when, 0, 0, 0)[:6]
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(zone), fold=fold)


def utc(*when: int) -> dt.datetime:
    return local(*when, zone="UTC").astimezone(UTC)


NOON = local(2024, 6, 12, 12)  # a Wednesday in summer time


def run(
    *,
    contact: ContactView = CONTACT,
    topic: TopicView = OFFERS,
    subscription: SubscriptionView | None = SUBSCRIBED,
    preferences: PreferencesView = PreferencesView(),  # noqa: B008
    suppressions: Sequence[SuppressionView] = (),
    moment: dt.datetime = NOON,
    policy: Policy = Policy(),  # noqa: B008
) -> Resolution:
    return resolve(
        contact=contact,
        topic=topic,
        subscription=subscription,
        preferences=preferences,
        suppressions=suppressions,
        moment=moment,
        policy=policy,
    )


def refusals(*channels: Channel, reason: RefusalReason) -> tuple[Refusal, ...]:
    return tuple(Refusal(channel, reason) for channel in channels)


# --- input checks -------------------------------------------------------------------------


def test_a_naive_moment_is_refused() -> None:
    with pytest.raises(ValueError, match="moment"):
        run(moment=dt.datetime(2024, 6, 12, 12))


def test_a_naive_suppression_end_is_refused() -> None:
    naive = SuppressionView(EMAIL, SuppressionReason.MANUAL, until=dt.datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="until"):
        run(suppressions=[naive])


def test_an_unknown_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        run(contact=ContactView(ContactKind.CLIENT, "Mars/Olympus_Mons", CONTACT.addresses))


# --- audience and subscription ----------------------------------------------------------------


def test_wrong_audience_refuses_every_allowed_channel() -> None:
    topic = TopicView("staff-news", Audience.EMPLOYEES, (EMAIL, SMS), (EMAIL,))
    subscription = SubscriptionView(SubscriptionStatus.SUBSCRIBED, (WEBHOOK, EMAIL))
    result = run(topic=topic, subscription=subscription)
    assert result == Resolution(
        refused=refusals(EMAIL, SMS, WEBHOOK, reason=RefusalReason.WRONG_AUDIENCE)
    )


def test_no_subscription_refuses_the_default_channels() -> None:
    assert run(subscription=None) == Resolution(
        refused=refusals(EMAIL, reason=RefusalReason.NOT_SUBSCRIBED)
    )


def test_no_subscription_and_no_defaults_refuses_every_allowed_channel() -> None:
    topic = TopicView("offers", Audience.ALL, (EMAIL, SMS), ())
    result = run(topic=topic, subscription=None)
    assert result == Resolution(refused=refusals(EMAIL, SMS, reason=RefusalReason.NOT_SUBSCRIBED))


def test_a_required_topic_is_implicitly_subscribed() -> None:
    assert run(topic=RECEIPTS, subscription=None) == Resolution(send_now=(EMAIL, SMS))


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (SubscriptionStatus.UNSUBSCRIBED, RefusalReason.UNSUBSCRIBED),
        (SubscriptionStatus.PENDING, RefusalReason.PENDING_CONFIRMATION),
    ],
)
def test_an_unconfirmed_or_ended_subscription_refuses_every_channel(
    status: SubscriptionStatus, reason: RefusalReason
) -> None:
    subscription = SubscriptionView(status, (SMS, EMAIL))
    assert run(subscription=subscription) == Resolution(refused=refusals(SMS, EMAIL, reason=reason))


def test_unsubscribe_from_everything_refuses_every_channel() -> None:
    result = run(preferences=PreferencesView(unsubscribed_all=True))
    assert result == Resolution(refused=refusals(EMAIL, SMS, reason=RefusalReason.UNSUBSCRIBED_ALL))


def test_the_topic_status_is_named_before_unsubscribe_from_everything() -> None:
    subscription = SubscriptionView(SubscriptionStatus.UNSUBSCRIBED, (EMAIL,))
    result = run(subscription=subscription, preferences=PreferencesView(unsubscribed_all=True))
    assert result.refused == refusals(EMAIL, reason=RefusalReason.UNSUBSCRIBED)


def test_subscribed_on_no_channel_is_not_subscribed() -> None:
    subscription = SubscriptionView(SubscriptionStatus.SUBSCRIBED, ())
    assert run(subscription=subscription).refused == refusals(
        EMAIL, reason=RefusalReason.NOT_SUBSCRIBED
    )


def test_a_required_topic_ignores_every_unsubscribe() -> None:
    subscription = SubscriptionView(SubscriptionStatus.UNSUBSCRIBED, (SMS,))
    result = run(
        topic=RECEIPTS,
        subscription=subscription,
        preferences=PreferencesView(unsubscribed_all=True),
    )
    assert result == Resolution(send_now=(SMS,))


def test_a_required_topic_without_chosen_channels_uses_its_defaults() -> None:
    subscription = SubscriptionView(SubscriptionStatus.PENDING, ())
    assert run(topic=RECEIPTS, subscription=subscription) == Resolution(send_now=(EMAIL, SMS))


# --- per channel ------------------------------------------------------------------------------


def test_each_channel_gets_its_own_refusal() -> None:
    subscription = SubscriptionView(SubscriptionStatus.SUBSCRIBED, (WEBHOOK, VOICE, SMS, EMAIL))
    contact = ContactView(ContactKind.CLIENT, NEW_YORK, {EMAIL: "ada@example.org", SMS: "  "})
    result = run(
        contact=contact,
        subscription=subscription,
        preferences=PreferencesView(blocked_channels=frozenset({VOICE})),
    )
    assert result == Resolution(
        send_now=(EMAIL,),
        refused=(
            Refusal(WEBHOOK, RefusalReason.CHANNEL_NOT_ALLOWED),
            Refusal(VOICE, RefusalReason.CHANNEL_BLOCKED),
            Refusal(SMS, RefusalReason.NO_ADDRESS),
        ),
    )


def test_a_blocked_channel_stays_blocked_for_a_required_topic() -> None:
    result = run(topic=RECEIPTS, preferences=PreferencesView(blocked_channels=frozenset({SMS})))
    assert result == Resolution(
        send_now=(EMAIL,), refused=refusals(SMS, reason=RefusalReason.CHANNEL_BLOCKED)
    )


def test_an_active_suppression_refuses_the_channel_and_says_why() -> None:
    stop = SuppressionView(SMS, SuppressionReason.SMS_STOP)
    result = run(suppressions=[stop])
    assert result == Resolution(
        send_now=(EMAIL,), refused=(Refusal(SMS, RefusalReason.SUPPRESSED, detail="sms_stop"),)
    )


@pytest.mark.parametrize(
    ("until", "suppressed"),
    [
        (NOON - dt.timedelta(seconds=1), False),
        (NOON, False),
        (NOON + dt.timedelta(seconds=1), True),
    ],
)
def test_a_suppression_ends_at_its_until(until: dt.datetime, suppressed: bool) -> None:
    soft = SuppressionView(EMAIL, SuppressionReason.SOFT_BOUNCE, until=until.astimezone(UTC))
    assert (EMAIL in run(suppressions=[soft]).send_now) is not suppressed


def test_a_hard_bounce_stops_even_a_required_topic() -> None:
    bounce = SuppressionView(EMAIL, SuppressionReason.HARD_BOUNCE)
    result = run(topic=RECEIPTS, suppressions=[bounce])
    assert result == Resolution(
        send_now=(SMS,), refused=(Refusal(EMAIL, RefusalReason.SUPPRESSED, detail="hard_bounce"),)
    )


def test_an_erasure_stops_marketing_but_not_a_required_topic() -> None:
    erased = [SuppressionView(EMAIL, SuppressionReason.ERASURE)]
    assert run(suppressions=erased).refused == (
        Refusal(EMAIL, RefusalReason.SUPPRESSED, detail="erasure"),
    )
    assert run(topic=RECEIPTS, suppressions=erased) == Resolution(send_now=(EMAIL, SMS))


def test_an_erasure_does_not_hide_another_suppression_from_a_required_topic() -> None:
    both = [
        SuppressionView(EMAIL, SuppressionReason.ERASURE),
        SuppressionView(EMAIL, SuppressionReason.COMPLAINT),
    ]
    refused = run(topic=RECEIPTS, suppressions=both).refused
    assert refused == (Refusal(EMAIL, RefusalReason.SUPPRESSED, detail="complaint"),)


def test_an_erasure_follows_the_category_not_required() -> None:
    """An erased person who comes back and asks for order updates gets them; marketing they
    asked for again, even on a topic they could not leave, stays stopped."""
    erased = [SuppressionView(EMAIL, SuppressionReason.ERASURE)]
    assert run(topic=ORDERS, suppressions=erased) == Resolution(send_now=(EMAIL, SMS))
    required_marketing = replace(RECEIPTS, category=TopicCategory.MARKETING)
    assert run(topic=required_marketing, suppressions=erased).refused == (
        Refusal(EMAIL, RefusalReason.SUPPRESSED, detail="erasure"),
    )


def test_duplicates_collapse_and_preference_order_is_kept() -> None:
    subscription = SubscriptionView(
        SubscriptionStatus.SUBSCRIBED, (VOICE, EMAIL, VOICE, SMS, EMAIL)
    )
    assert run(subscription=subscription) == Resolution(send_now=(VOICE, EMAIL, SMS))


# --- the legal window for SMS and voice marketing (RELIABILITY 17) -----------------------------


@pytest.mark.parametrize(
    ("moment", "until"),
    [
        (local(2024, 6, 12, 7, 59), local(2024, 6, 12, 8)),
        (local(2024, 6, 12, 21), local(2024, 6, 13, 8)),
        (local(2024, 6, 12, 23, 30), local(2024, 6, 13, 8)),
    ],
)
def test_sms_and_voice_marketing_wait_for_8_to_21_local(
    moment: dt.datetime, until: dt.datetime
) -> None:
    subscription = SubscriptionView(SubscriptionStatus.SUBSCRIBED, (SMS, EMAIL, VOICE))
    result = run(subscription=subscription, moment=moment)
    assert result.send_now == (EMAIL,)
    assert result.deferred == tuple(
        Deferral(channel, until.astimezone(UTC), DeferralReason.LEGAL_WINDOW)
        for channel in (SMS, VOICE)
    )
    assert all(deferral.until.tzinfo is UTC for deferral in result.deferred)


@pytest.mark.parametrize("moment", [local(2024, 6, 12, 8), local(2024, 6, 12, 20, 59, 59)])
def test_sms_marketing_goes_inside_the_legal_window(moment: dt.datetime) -> None:
    assert run(moment=moment).send_now == (EMAIL, SMS)


def test_a_required_sms_is_not_held_by_the_legal_window() -> None:
    assert run(topic=RECEIPTS, moment=local(2024, 6, 12, 23, 30)).send_now == (EMAIL, SMS)


def test_the_legal_window_follows_the_category_not_required() -> None:
    """An order-shipped SMS on an optional transactional topic goes at 00:17; the same SMS
    on a marketing topic waits for 08:00, whether or not people may leave the topic."""
    night = local(2024, 6, 12, 0, 17)
    assert run(topic=ORDERS, moment=night) == Resolution(send_now=(EMAIL, SMS))
    marketing = replace(ORDERS, category=TopicCategory.MARKETING)
    assert run(topic=marketing, moment=night).deferred == (
        Deferral(SMS, local(2024, 6, 12, 8).astimezone(UTC), DeferralReason.LEGAL_WINDOW),
    )
    required_marketing = replace(RECEIPTS, category=TopicCategory.MARKETING)
    assert run(topic=required_marketing, moment=night).send_now == (EMAIL,)


def test_a_topic_without_a_category_is_marketing_unless_required() -> None:
    assert OFFERS.marketing
    assert not RECEIPTS.marketing
    assert not ORDERS.required
    assert not ORDERS.marketing


def test_the_legal_window_can_be_switched_off() -> None:
    result = run(moment=local(2024, 6, 12, 23, 30), policy=Policy(legal_window=None))
    assert result.send_now == (EMAIL, SMS)


def test_the_legal_window_follows_the_recipient_zone() -> None:
    moscow = ContactView(ContactKind.CLIENT, "Europe/Moscow", CONTACT.addresses)
    result = run(contact=moscow, moment=local(2024, 6, 12, 7, zone="Europe/Moscow"))
    assert result.deferred == (Deferral(SMS, utc(2024, 6, 12, 5), DeferralReason.LEGAL_WINDOW),)


# --- quiet hours --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "until"),
    [
        (local(2024, 6, 12, 22), local(2024, 6, 13, 7)),
        (local(2024, 6, 12, 23, 30), local(2024, 6, 13, 7)),
        (local(2024, 6, 13, 0, 0), local(2024, 6, 13, 7)),
        (local(2024, 6, 13, 6, 59), local(2024, 6, 13, 7)),
    ],
)
def test_quiet_hours_wrapping_midnight_hold_until_they_end(
    moment: dt.datetime, until: dt.datetime
) -> None:
    subscription = SubscriptionView(SubscriptionStatus.SUBSCRIBED, (EMAIL,))
    result = run(
        subscription=subscription, preferences=PreferencesView(quiet_hours=OVERNIGHT), moment=moment
    )
    assert result == Resolution(
        deferred=(Deferral(EMAIL, until.astimezone(UTC), DeferralReason.QUIET_HOURS),)
    )


@pytest.mark.parametrize("moment", [local(2024, 6, 12, 7), local(2024, 6, 12, 21, 59)])
def test_outside_quiet_hours_mail_goes_now(moment: dt.datetime) -> None:
    result = run(preferences=PreferencesView(quiet_hours=OVERNIGHT), moment=moment)
    assert EMAIL in result.send_now


def test_quiet_hours_that_start_where_they_end_are_no_quiet_hours() -> None:
    empty = QuietHours(dt.time(22), dt.time(22))
    result = run(preferences=PreferencesView(quiet_hours=empty), moment=local(2024, 6, 12, 23))
    assert result.send_now == (EMAIL,)


def test_quiet_hours_hold_a_required_topic_unless_it_bypasses_them() -> None:
    quiet, late = PreferencesView(quiet_hours=OVERNIGHT), local(2024, 6, 12, 23)
    held = run(topic=RECEIPTS, preferences=quiet, moment=late)
    assert [deferral.reason for deferral in held.deferred] == [DeferralReason.QUIET_HOURS] * 2
    urgent = TopicView(
        "password-reset", Audience.ALL, (EMAIL,), (EMAIL,), required=True, bypass_quiet_hours=True
    )
    assert run(topic=urgent, preferences=quiet, moment=late).send_now == (EMAIL,)


def test_the_release_satisfies_every_window_at_once() -> None:
    # 05:00: the legal window opens at 08:00, but quiet hours then run to 09:00.
    quiet = PreferencesView(quiet_hours=QuietHours(dt.time(6), dt.time(9)))
    early = run(preferences=quiet, moment=local(2024, 6, 12, 5))
    assert (
        Deferral(SMS, local(2024, 6, 12, 9).astimezone(UTC), DeferralReason.LEGAL_WINDOW)
        in early.deferred
    )
    # 07:00: both hold it; quiet hours hold it longer, so they are named.
    later = run(preferences=quiet, moment=local(2024, 6, 12, 7))
    assert (
        Deferral(SMS, local(2024, 6, 12, 9).astimezone(UTC), DeferralReason.QUIET_HOURS)
        in later.deferred
    )


def test_quiet_hours_covering_every_legal_hour_give_way_to_the_legal_window() -> None:
    daytime = PreferencesView(quiet_hours=QuietHours(dt.time(7), dt.time(22)))
    result = run(preferences=daytime, moment=local(2024, 6, 12, 23))
    assert result.send_now == (EMAIL,)  # 23:00 is outside these quiet hours
    assert result.deferred == (
        Deferral(SMS, local(2024, 6, 13, 8).astimezone(UTC), DeferralReason.LEGAL_WINDOW),
    )
    noon = run(preferences=daytime, moment=NOON)
    assert noon.send_now == (SMS,)
    assert [deferral.channel for deferral in noon.deferred] == [EMAIL]


# --- digests ------------------------------------------------------------------------------------

DAILY = SubscriptionView(SubscriptionStatus.SUBSCRIBED, (EMAIL,), Frequency.DAILY)
WEEKLY = SubscriptionView(SubscriptionStatus.SUBSCRIBED, (EMAIL,), Frequency.WEEKLY)


@pytest.mark.parametrize(
    ("subscription", "moment", "until"),
    [
        (DAILY, local(2024, 6, 12, 14), local(2024, 6, 13, 9)),
        (DAILY, local(2024, 6, 12, 8), local(2024, 6, 12, 9)),
        (DAILY, local(2024, 6, 12, 9, 0, 1), local(2024, 6, 13, 9)),
        (WEEKLY, local(2024, 6, 12, 14), local(2024, 6, 17, 9)),  # Wednesday -> Monday
        (WEEKLY, local(2024, 6, 17, 9, 0, 1), local(2024, 6, 24, 9)),
    ],
)
def test_a_digest_waits_for_its_next_time(
    subscription: SubscriptionView, moment: dt.datetime, until: dt.datetime
) -> None:
    result = run(subscription=subscription, moment=moment)
    assert result == Resolution(
        deferred=(Deferral(EMAIL, until.astimezone(UTC), DeferralReason.DIGEST),)
    )


@pytest.mark.parametrize(
    ("subscription", "moment"), [(DAILY, local(2024, 6, 12, 9)), (WEEKLY, local(2024, 6, 17, 9))]
)
def test_a_digest_goes_at_its_time(subscription: SubscriptionView, moment: dt.datetime) -> None:
    assert run(subscription=subscription, moment=moment).send_now == (EMAIL,)


def test_a_digest_due_in_quiet_hours_goes_when_they_end() -> None:
    quiet = PreferencesView(quiet_hours=QuietHours(dt.time(22), dt.time(10)))
    result = run(subscription=DAILY, preferences=quiet, moment=local(2024, 6, 12, 14))
    until = local(2024, 6, 13, 10).astimezone(UTC)
    assert result.deferred == (Deferral(EMAIL, until, DeferralReason.DIGEST),)
    assert run(subscription=DAILY, preferences=quiet, moment=until).send_now == (EMAIL,)


def test_a_weekly_sms_digest_is_named_a_digest_even_at_night() -> None:
    weekly_sms = SubscriptionView(SubscriptionStatus.SUBSCRIBED, (SMS,), Frequency.WEEKLY)
    result = run(subscription=weekly_sms, moment=local(2024, 6, 12, 23))
    assert result.deferred == (
        Deferral(SMS, local(2024, 6, 17, 9).astimezone(UTC), DeferralReason.DIGEST),
    )


def test_a_required_topic_is_never_a_digest() -> None:
    daily = SubscriptionView(SubscriptionStatus.SUBSCRIBED, (EMAIL,), Frequency.DAILY)
    assert run(topic=RECEIPTS, subscription=daily).send_now == (EMAIL,)


def test_a_weekday_outside_monday_to_sunday_is_refused() -> None:
    with pytest.raises(ValueError, match="weekday"):
        run(subscription=WEEKLY, policy=Policy(digest_weekday=7))


# --- daylight saving ---------------------------------------------------------------------------


def test_spring_forward_quiet_hours_ending_in_the_gap_end_at_the_transition() -> None:
    # New York, 10 March 2024: 02:00 EST becomes 03:00 EDT; 02:30 never happens.
    quiet = PreferencesView(quiet_hours=QuietHours(dt.time(22), dt.time(2, 30)))
    result = run(preferences=quiet, moment=local(2024, 3, 10, 1, 45))
    assert result.deferred[0] == Deferral(EMAIL, utc(2024, 3, 10, 7), DeferralReason.QUIET_HOURS)
    assert local(2024, 3, 10, 3).astimezone(UTC) == utc(2024, 3, 10, 7)


def test_spring_forward_legal_window_opens_at_8_summer_time() -> None:
    result = run(moment=local(2024, 3, 10, 1, 30))
    assert result.deferred == (Deferral(SMS, utc(2024, 3, 10, 12), DeferralReason.LEGAL_WINDOW),)


def test_a_digest_time_in_the_gap_goes_at_the_transition() -> None:
    policy = Policy(digest_time=dt.time(2, 30))
    result = run(subscription=DAILY, moment=local(2024, 3, 9, 12), policy=policy)
    assert result.deferred == (Deferral(EMAIL, utc(2024, 3, 10, 7), DeferralReason.DIGEST),)


def test_a_gap_at_midnight_is_handled_too() -> None:
    # Havana, 10 March 2024: midnight becomes 01:00, so 00:30 never happens.
    havana = ContactView(ContactKind.CLIENT, "America/Havana", CONTACT.addresses)
    policy = Policy(digest_time=dt.time(0, 30))
    result = run(contact=havana, subscription=DAILY, moment=utc(2024, 3, 9, 12), policy=policy)
    assert result.deferred == (Deferral(EMAIL, utc(2024, 3, 10, 5), DeferralReason.DIGEST),)


def test_fall_back_ambiguous_end_means_the_first_one() -> None:
    # New York, 3 November 2024: 02:00 EDT becomes 01:00 EST; 01:00-02:00 happens twice.
    quiet = PreferencesView(quiet_hours=QuietHours(dt.time(22), dt.time(1, 30)))
    first = run(preferences=quiet, moment=local(2024, 11, 3, 1, 10))
    assert first.deferred[0] == Deferral(EMAIL, utc(2024, 11, 3, 5, 30), DeferralReason.QUIET_HOURS)
    # The second 01:10 comes after the quiet hours ended at the first 01:30.
    assert run(preferences=quiet, moment=local(2024, 11, 3, 1, 10, fold=1)).send_now[0] == EMAIL


def test_fall_back_quiet_hour_lasts_two_hours() -> None:
    quiet = PreferencesView(quiet_hours=QuietHours(dt.time(1), dt.time(2)))
    result = run(preferences=quiet, moment=local(2024, 11, 3, 1, 30, fold=1))
    assert result.deferred[0] == Deferral(EMAIL, utc(2024, 11, 3, 7), DeferralReason.QUIET_HOURS)


def test_fall_back_night_lasts_25_hours_for_the_legal_window() -> None:
    result = run(moment=local(2024, 11, 2, 22))
    assert result.deferred == (Deferral(SMS, utc(2024, 11, 3, 13), DeferralReason.LEGAL_WINDOW),)


def test_moscow_spring_forward_2011() -> None:
    # 27 March 2011: 02:00 MSK (+3) became 03:00 (+4), for good.
    moscow = ContactView(ContactKind.CLIENT, "Europe/Moscow", CONTACT.addresses)
    quiet = PreferencesView(quiet_hours=QuietHours(dt.time(23), dt.time(2, 30)))
    result = run(
        contact=moscow, preferences=quiet, moment=local(2011, 3, 27, 1, 30, zone="Europe/Moscow")
    )
    assert result.deferred[0] == Deferral(EMAIL, utc(2011, 3, 26, 23), DeferralReason.QUIET_HOURS)


def test_moscow_fall_back_2014() -> None:
    # 26 October 2014: 02:00 (+4) became 01:00 (+3), for good; 08:00 is then 05:00 UTC.
    moscow = ContactView(ContactKind.CLIENT, "Europe/Moscow", CONTACT.addresses)
    result = run(contact=moscow, moment=local(2014, 10, 25, 22, zone="Europe/Moscow"))
    assert result.deferred == (Deferral(SMS, utc(2014, 10, 26, 5), DeferralReason.LEGAL_WINDOW),)


# --- RELIABILITY 14, as properties -----------------------------------------------------------

ZONES = (
    "UTC",
    NEW_YORK,
    "Europe/Moscow",
    "Europe/London",
    "America/Havana",
    "America/Santiago",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
)
PROPERTIES = settings(max_examples=300, deadline=None, database=None)


@functools.cache
def transitions(zone_name: str) -> tuple[dt.datetime, ...]:
    """Noon UTC of each day, 2010-2026, just after the zone changed its UTC offset."""
    zone, day = ZoneInfo(zone_name), utc(2010, 1, 1, 12)
    found, offset = [], day.astimezone(zone).utcoffset()
    while day.year < 2027:
        day += dt.timedelta(days=1)
        if day.astimezone(zone).utcoffset() != offset:
            found.append(day)
            offset = day.astimezone(zone).utcoffset()
    return tuple(found) or (day,)


def moments(zone_name: str) -> st.SearchStrategy[dt.datetime]:
    """Whole minutes, often within a few days of a transition, in the zone's own clock."""
    near = st.sampled_from(transitions(zone_name)).flatmap(
        lambda noon: st.integers(-3 * 1440, 2 * 1440).map(lambda m: noon + dt.timedelta(minutes=m))
    )
    anywhere = st.integers(0, 17 * 365 * 1440).map(
        lambda m: utc(2010, 1, 1) + dt.timedelta(minutes=m)
    )
    return st.one_of(near, anywhere).map(lambda moment: moment.astimezone(ZoneInfo(zone_name)))


@dataclass(frozen=True)
class Situation:
    contact: ContactView
    topic: TopicView
    subscription: SubscriptionView | None
    preferences: PreferencesView
    suppressions: tuple[SuppressionView, ...]
    moment: dt.datetime
    policy: Policy

    def resolve(self, moment: dt.datetime | None = None) -> Resolution:
        return resolve(
            contact=self.contact,
            topic=self.topic,
            subscription=self.subscription,
            preferences=self.preferences,
            suppressions=self.suppressions,
            moment=self.moment if moment is None else moment,
            policy=self.policy,
        )

    def candidates(self) -> set[Channel]:
        chosen = self.subscription.channels if self.subscription else ()
        listed = chosen or self.topic.default_channels or self.topic.allowed_channels
        if not self.topic.audience.includes(self.contact.kind):
            return {*self.topic.allowed_channels, *listed}
        return set(listed)

    def suppressed(self) -> set[Channel]:
        """Channels with an active suppression that applies to this topic."""
        return {
            s.channel
            for s in self.suppressions
            if (s.until is None or s.until > self.moment)
            and (s.reason.blocks_transactional or self.topic.marketing)
        }


# Mostly situations where something can be sent, so the timing rules get exercised too.
channels = st.sampled_from(Channel)
channel_lists = st.lists(channels, max_size=5).map(tuple)
mostly_all_channels = st.just(tuple(Channel)) | channel_lists
walls = st.builds(dt.time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))
local_windows = st.builds(QuietHours, walls, walls)
statuses = st.sampled_from([SubscriptionStatus.SUBSCRIBED] * 4 + list(SubscriptionStatus))
subscriptions = st.one_of(
    st.none(),
    *[st.builds(SubscriptionView, statuses, channel_lists, st.sampled_from(Frequency))] * 3,
)
preference_views = st.builds(
    PreferencesView,
    blocked_channels=st.frozensets(channels, max_size=1),
    quiet_hours=st.one_of(st.none(), local_windows, local_windows),
    unsubscribed_all=st.sampled_from([False, False, False, True]),
)
policies = st.just(Policy()) | st.builds(
    Policy,
    legal_window=st.none() | local_windows,
    legal_window_channels=st.frozensets(channels),
    digest_time=walls,
    digest_weekday=st.integers(0, 6),
)
topics = st.builds(
    TopicView,
    key=st.just("topic"),
    audience=st.sampled_from([Audience.ALL, Audience.ALL, *Audience]),
    allowed_channels=mostly_all_channels,
    default_channels=channel_lists,
    bypass_quiet_hours=st.booleans(),
)
addresses = st.just(dict.fromkeys(Channel, "address")) | st.dictionaries(
    channels, st.sampled_from(["address", "", " "])
)


@st.composite
def situations(
    draw: st.DrawFn, *, required: bool | None = None, consenting: bool = False
) -> Situation:
    """Any contact, topic, subscription and suppressions; with ``consenting``, a contact who
    asked for the topic on channels it allows and has addresses for, so only suppressions
    and timing stand in the way."""
    zone_name = draw(st.sampled_from(ZONES))
    moment = draw(moments(zone_name))
    ends = st.none() | st.integers(-3 * 1440, 3 * 1440).map(
        lambda m: moment + dt.timedelta(minutes=m)
    )
    suppression = st.builds(SuppressionView, channels, st.sampled_from(SuppressionReason), ends)
    topic = replace(
        draw(topics),
        required=draw(st.booleans()) if required is None else required,
        category=draw(st.none() | st.sampled_from(TopicCategory)),
    )
    subscription = draw(subscriptions)
    preferences = draw(preference_views)
    contact = ContactView(draw(st.sampled_from(ContactKind)), zone_name, draw(addresses))
    if consenting:
        topic = replace(topic, audience=Audience.ALL, allowed_channels=tuple(Channel))
        chosen = draw(st.lists(channels, min_size=1, max_size=4).map(tuple))
        every = draw(st.sampled_from(Frequency))
        subscription = SubscriptionView(SubscriptionStatus.SUBSCRIBED, chosen, every)
        preferences = replace(preferences, blocked_channels=frozenset(), unsubscribed_all=False)
        contact = replace(contact, addresses=dict.fromkeys(Channel, "address"))
    return Situation(
        contact=contact,
        topic=topic,
        subscription=subscription,
        preferences=preferences,
        suppressions=tuple(draw(st.lists(suppression, max_size=3))),
        moment=moment,
        policy=draw(policies),
    )


def usable(result: Resolution) -> set[Channel]:
    return {*result.send_now, *(deferral.channel for deferral in result.deferred)}


@PROPERTIES
@given(situations() | situations(consenting=True))
def test_an_active_suppression_always_wins(situation: Situation) -> None:
    """(a) Whatever the subscription and topic, a suppressed channel is neither sent nor
    deferred; only an erasure lets a transactional topic through."""
    assert not usable(situation.resolve()) & situation.suppressed()


@PROPERTIES
@given(situations(required=True))
def test_a_required_topic_ignores_unsubscribes_but_not_suppression(situation: Situation) -> None:
    """(b)"""
    result = situation.resolve()
    consent = {
        RefusalReason.UNSUBSCRIBED,
        RefusalReason.UNSUBSCRIBED_ALL,
        RefusalReason.PENDING_CONFIRMATION,
        RefusalReason.NOT_SUBSCRIBED,
    }
    assert not {refusal.reason for refusal in result.refused} & consent
    assert not usable(result) & situation.suppressed()


@PROPERTIES
@given(situations())
def test_every_candidate_lands_in_exactly_one_bucket(situation: Situation) -> None:
    """(c)"""
    result = situation.resolve()
    placed = [
        *result.send_now,
        *(deferral.channel for deferral in result.deferred),
        *(refusal.channel for refusal in result.refused),
    ]
    assert len(placed) == len(set(placed))
    assert set(placed) == situation.candidates()


@PROPERTIES
@given(situations(consenting=True))
def test_a_deferred_channel_is_sendable_at_its_until(situation: Situation) -> None:
    """(d) `until` is aware UTC, later than `moment` and at most 15 days on; asked again with
    moment=until, the very same inputs put that channel in send_now: suppressions inactive at
    `moment` stay inactive, `until` lies outside every window, and it is a digest time.
    (A scheduler must re-ask as of `until`: a digest is due at one instant, not an hour.)"""
    result = situation.resolve()
    for deferral in result.deferred:
        assert deferral.until.tzinfo is UTC
        assert situation.moment < deferral.until <= situation.moment + dt.timedelta(days=15)
        assert deferral.channel in situation.resolve(moment=deferral.until).send_now
