"""The retry policy on its own: each answer an adapter can give, and what becomes of it."""

from __future__ import annotations

import datetime as dt

import pytest

from hub.channels.base import (
    AmbiguousDeliveryError,
    DeliveryError,
    PermanentDeliveryError,
    Receipt,
    RetryableDeliveryError,
)
from hub.dispatch.retry import MAX_BACKOFF, Decision, Verdict, backoff, decide
from hub.domain import Channel, DeliveryState, FailureReason, SuppressionReason

NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
PAUSE_ENDS = NOW + dt.timedelta(minutes=5)
FIRST = 10.0
MAX = 4


def middle(low: float, high: float) -> float:
    """No jitter: the backoff itself."""
    return (low + high) / 2


def after(seconds: float) -> dt.datetime:
    return NOW + dt.timedelta(seconds=seconds)


def decided(
    answer: Receipt | DeliveryError,
    *,
    channel: Channel = Channel.EMAIL,
    attempts: int = 1,
    paused_until: dt.datetime | None = None,
) -> Decision:
    return decide(
        answer,
        channel=channel,
        attempts=attempts,
        max_attempts=MAX,
        now=NOW,
        first_retry=FIRST,
        paused_until=paused_until,
        uniform=middle,
    )


def test_an_accepted_message_is_sent() -> None:
    decision = decided(Receipt(provider_id="<k@hub>"))
    assert (decision.verdict, decision.state, decision.reason) == (
        Verdict.SENT,
        DeliveryState.SENT,
        None,
    )
    assert decision.spent
    assert not decision.ended


@pytest.mark.parametrize(("attempts", "wait"), [(1, 10.0), (2, 20.0), (3, 40.0)])
def test_smtp_4xx_is_retried_later_and_later(attempts: int, wait: float) -> None:
    decision = decided(RetryableDeliveryError("451 try later", code="451"), attempts=attempts)
    assert decision == Decision(Verdict.RETRY, DeliveryState.QUEUED, at=after(wait))
    assert decision.spent
    assert not decision.ended


def test_the_backoff_is_jittered_and_stops_growing_at_an_hour() -> None:
    assert backoff(1, None, first=FIRST, uniform=min) == FIRST * 0.8
    assert backoff(1, None, first=FIRST, uniform=max) == FIRST * 1.2
    assert backoff(30, None, first=FIRST, uniform=middle) == MAX_BACKOFF
    for _ in range(50):
        assert FIRST * 0.8 <= backoff(1, None, first=FIRST) <= FIRST * 1.2


def test_a_429_waits_at_least_its_retry_after() -> None:
    busy = RetryableDeliveryError("429 Too Many Requests", code="429", retry_after=120)
    assert decided(busy).at == after(120)
    soon = RetryableDeliveryError("429 Too Many Requests", code="429", retry_after=1)
    assert decided(soon).at == after(FIRST), "the backoff wins when it is longer"


def test_transient_failures_give_up_when_the_attempts_run_out() -> None:
    decision = decided(RetryableDeliveryError("451", code="451"), attempts=MAX)
    assert decision == Decision(Verdict.GIVE_UP, DeliveryState.FAILED, FailureReason.GAVE_UP)
    assert decision.ended
    assert decision.reason == "gave_up"  # the stored string the API compares


def test_smtp_5xx_is_rejected_for_good_without_touching_the_address() -> None:
    decision = decided(PermanentDeliveryError("554 spam", code="554"))
    assert decision == Decision(Verdict.FAIL, DeliveryState.FAILED, FailureReason.REJECTED)
    assert decision.suppress is None
    assert decision.ended


def test_a_hard_bounce_bounces_and_suppresses_the_address() -> None:
    error = PermanentDeliveryError(
        "550 no such user", code="550", suppress=SuppressionReason.HARD_BOUNCE
    )
    decision = decided(error)
    assert (decision.verdict, decision.state) == (Verdict.FAIL, DeliveryState.BOUNCED)
    assert decision.reason is decision.suppress is SuppressionReason.HARD_BOUNCE


@pytest.mark.parametrize(
    ("channel", "code", "reason"),
    [
        (Channel.SMS, "21610", SuppressionReason.CARRIER_OPT_OUT),  # STOP at the carrier
        (Channel.WEBHOOK, "410", SuppressionReason.ENDPOINT_GONE),
    ],
)
def test_other_dead_addresses_fail_and_are_suppressed(
    channel: Channel, code: str, reason: SuppressionReason
) -> None:
    decision = decided(PermanentDeliveryError("gone", code=code, suppress=reason), channel=channel)
    assert decision == Decision(Verdict.FAIL, DeliveryState.FAILED, reason, suppress=reason)


def test_a_plain_delivery_error_is_a_rejection() -> None:
    assert decided(DeliveryError("odd")).reason is FailureReason.REJECTED


@pytest.mark.parametrize("channel", [Channel.EMAIL, Channel.WEBHOOK])
def test_no_answer_is_resent_under_the_same_key_where_the_receiver_drops_copies(
    channel: Channel,
) -> None:
    timeout = AmbiguousDeliveryError("read timeout")
    decision = decided(timeout, channel=channel)
    assert decision == Decision(
        Verdict.RETRY, DeliveryState.QUEUED, at=after(FIRST), ambiguous=True
    )
    gave_up = decided(timeout, channel=channel, attempts=MAX)
    assert (gave_up.verdict, gave_up.reason, gave_up.ambiguous) == (
        Verdict.GIVE_UP,
        FailureReason.GAVE_UP,
        True,
    )


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.VOICE])
def test_no_answer_on_a_text_or_call_stays_unknown_rather_than_go_twice(channel: Channel) -> None:
    decision = decided(AmbiguousDeliveryError("read timeout"), channel=channel)
    assert decision == Decision(
        Verdict.UNKNOWN, DeliveryState.UNKNOWN, FailureReason.NO_ANSWER, ambiguous=True
    )
    assert not decision.ended, "a status callback may still settle it"


def test_a_paused_channel_parks_the_unavailable_without_spending_the_attempt() -> None:
    down = RetryableDeliveryError("connection refused", unavailable=True)
    for attempts in (1, MAX):
        decision = decided(down, attempts=attempts, paused_until=PAUSE_ENDS)
        assert decision == Decision(Verdict.PARK, DeliveryState.QUEUED, at=PAUSE_ENDS)
        assert not decision.spent


def test_a_pause_changes_nothing_for_answers_about_the_message_itself() -> None:
    busy = RetryableDeliveryError("451 greylisted", code="451")
    assert decided(busy, paused_until=PAUSE_ENDS).verdict is Verdict.RETRY
    refused = PermanentDeliveryError("550", code="550", suppress=SuppressionReason.HARD_BOUNCE)
    assert decided(refused, paused_until=PAUSE_ENDS).verdict is Verdict.FAIL


def test_unavailable_without_a_pause_is_an_ordinary_retry() -> None:
    down = RetryableDeliveryError("connection refused", unavailable=True)
    assert decided(down).verdict is Verdict.RETRY
    assert decided(down, attempts=MAX).verdict is Verdict.GIVE_UP
