"""The resolver on a transactional topic a person never subscribed to (issue 19, item 3)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.domain import (
    Channel,
    DeferralReason,
    RefusalReason,
    SubscriptionStatus,
    SuppressionReason,
    TopicCategory,
)
from hub.preferences.model import (
    Deferral,
    PreferencesView,
    QuietHours,
    Refusal,
    Resolution,
    Step,
    SubscriptionView,
    SuppressionView,
    TopicView,
)
from hub.preferences.resolver import resolve
from hub.preferences.trace import IMPLIED_CONSENT
from tests.unit.test_resolver import (
    CONTACT,
    NOON,
    OFFERS,
    ORDERS,
    OVERNIGHT,
    UTC,
    Situation,
    local,
    refusals,
    run,
    situations,
)

EMAIL, SMS, VOICE = Channel.EMAIL, Channel.SMS, Channel.VOICE
MARKETING = replace(OFFERS, category=TopicCategory.MARKETING)
# Transactional, with fewer default channels than it allows: the defaults are what goes.
RESETS = replace(
    ORDERS, key="password-reset", allowed_channels=(EMAIL, SMS), default_channels=(EMAIL,)
)


def test_no_subscription_on_a_transactional_topic_goes_on_its_default_channels() -> None:
    assert run(topic=RESETS, subscription=None) == Resolution(send_now=(EMAIL,))
    assert run(topic=ORDERS, subscription=None) == Resolution(send_now=(EMAIL, SMS))


@pytest.mark.parametrize("topic", [OFFERS, MARKETING], ids=["uncategorised", "marketing"])
def test_no_subscription_on_a_marketing_topic_is_still_refused(topic: TopicView) -> None:
    assert run(topic=topic, subscription=None) == Resolution(
        refused=refusals(EMAIL, reason=RefusalReason.NOT_SUBSCRIBED)
    )


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (SubscriptionStatus.UNSUBSCRIBED, RefusalReason.UNSUBSCRIBED),
        (SubscriptionStatus.PENDING, RefusalReason.PENDING_CONFIRMATION),
    ],
)
def test_a_row_that_is_not_a_yes_still_refuses_a_transactional_topic(
    status: SubscriptionStatus, reason: RefusalReason
) -> None:
    result = run(topic=ORDERS, subscription=SubscriptionView(status, (EMAIL,)))
    assert result == Resolution(refused=refusals(EMAIL, reason=reason))


def test_subscribed_on_no_channel_still_refuses_a_transactional_topic() -> None:
    result = run(topic=ORDERS, subscription=SubscriptionView(SubscriptionStatus.SUBSCRIBED, ()))
    assert result.refused == refusals(EMAIL, SMS, reason=RefusalReason.NOT_SUBSCRIBED)
    assert not result.send_now


def test_unsubscribe_from_everything_still_refuses_without_a_subscription() -> None:
    result = run(
        topic=ORDERS, subscription=None, preferences=PreferencesView(unsubscribed_all=True)
    )
    assert result == Resolution(refused=refusals(EMAIL, SMS, reason=RefusalReason.UNSUBSCRIBED_ALL))


def test_blocked_channels_and_suppressions_still_apply_without_a_subscription() -> None:
    stop = SuppressionView(SMS, SuppressionReason.SMS_STOP)
    assert run(topic=ORDERS, subscription=None, suppressions=[stop]) == Resolution(
        send_now=(EMAIL,), refused=(Refusal(SMS, RefusalReason.SUPPRESSED, detail="sms_stop"),)
    )
    blocked = PreferencesView(blocked_channels=frozenset({EMAIL}))
    assert run(topic=ORDERS, subscription=None, preferences=blocked) == Resolution(
        send_now=(SMS,), refused=refusals(EMAIL, reason=RefusalReason.CHANNEL_BLOCKED)
    )


def test_quiet_hours_hold_it_but_the_marketing_legal_window_does_not() -> None:
    late = local(2024, 6, 12, 23, 30)
    assert run(topic=ORDERS, subscription=None, moment=late).send_now == (EMAIL, SMS)
    quiet = PreferencesView(quiet_hours=OVERNIGHT)
    until = local(2024, 6, 13, 7).astimezone(UTC)
    assert run(topic=ORDERS, subscription=None, moment=late, preferences=quiet) == Resolution(
        deferred=tuple(
            Deferral(channel, until, DeferralReason.QUIET_HOURS) for channel in (EMAIL, SMS)
        )
    )
    bypassing = replace(ORDERS, bypass_quiet_hours=True)
    result = run(topic=bypassing, subscription=None, moment=late, preferences=quiet)
    assert result.send_now == (EMAIL, SMS)


def test_it_goes_at_once_whatever_digest_time_the_person_chose() -> None:
    chosen = PreferencesView(digest_time=dt.time(18), digest_weekday=4)
    assert run(topic=ORDERS, subscription=None, preferences=chosen).send_now == (EMAIL, SMS)


def test_explain_says_why_it_went_without_a_subscription() -> None:
    trace: list[Step] = []
    resolve(
        contact=CONTACT,
        topic=RESETS,
        subscription=None,
        preferences=PreferencesView(),
        suppressions=(),
        moment=NOON,
        trace=trace,
    )
    consent = [step for step in trace if step.rule == "consent"]
    assert consent == [Step("consent", "pass", IMPLIED_CONSENT)]
    assert IMPLIED_CONSENT.startswith("transactional: named by the sender, no subscription needed")
    assert Step("send", "pass", "send now", EMAIL) in trace


def test_explain_of_a_marketing_topic_without_a_subscription_refuses() -> None:
    trace: list[Step] = []
    resolve(
        contact=CONTACT,
        topic=MARKETING,
        subscription=None,
        preferences=PreferencesView(quiet_hours=QuietHours(dt.time(1), dt.time(2))),
        suppressions=(),
        moment=NOON,
        trace=trace,
    )
    assert [s for s in trace if s.rule == "consent"] == [
        Step("consent", "refuse", RefusalReason.NOT_SUBSCRIBED.value)
    ]


@settings(max_examples=300, deadline=None)
@given(situations(), st.booleans())
def test_without_a_row_only_the_category_decides_consent(
    situation: Situation, marketing: bool
) -> None:
    """With no subscription row, a marketing topic is refused outright; a transactional one is
    never refused for consent unless the person left everything."""
    category = TopicCategory.MARKETING if marketing else TopicCategory.TRANSACTIONAL
    topic = replace(situation.topic, category=category, required=False)
    picked = replace(situation, topic=topic, subscription=None)
    result = picked.resolve()
    reasons = {refusal.reason for refusal in result.refused}
    if not topic.audience.includes(picked.contact.kind):
        assert reasons <= {RefusalReason.WRONG_AUDIENCE}
    elif marketing:
        assert reasons <= {RefusalReason.NOT_SUBSCRIBED}
        assert not result.send_now
        assert not result.deferred
    elif picked.preferences.unsubscribed_all:
        assert reasons <= {RefusalReason.UNSUBSCRIBED_ALL}
        assert not result.send_now
    else:
        consent = {
            RefusalReason.NOT_SUBSCRIBED,
            RefusalReason.UNSUBSCRIBED,
            RefusalReason.PENDING_CONFIRMATION,
            RefusalReason.UNSUBSCRIBED_ALL,
        }
        assert not reasons & consent
        assert {*result.send_now, *(d.channel for d in result.deferred)} <= set(
            topic.default_channels or topic.allowed_channels
        )
