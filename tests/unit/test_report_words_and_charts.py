"""The report's pure parts: reasons in words, when waiting deliveries go, the chart's SVG
and its buckets; every stored reason the dispatcher writes has words."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET

import pytest

from hub.campaigns.report import STEPS, step_for, timeline
from hub.console import charts
from hub.domain import (
    DeferralReason,
    DeliveryState,
    FailureReason,
    RefusalReason,
    SuppressionReason,
    WithdrawalReason,
    delivery_reason,
)
from hub.services import delivery_words as words

NOW = dt.datetime(2026, 12, 7, 6, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize("reason", [*RefusalReason, *WithdrawalReason])
def test_every_refusal_has_words(reason: RefusalReason | WithdrawalReason) -> None:
    said = words.reason_words(DeliveryState.SUPPRESSED, reason.value)
    assert said
    assert "_" not in said


@pytest.mark.parametrize("reason", [*FailureReason, *SuppressionReason])
def test_every_failure_has_words(reason: FailureReason | SuppressionReason) -> None:
    said = words.reason_words(DeliveryState.FAILED, delivery_reason(reason, "detail_here"))
    assert said.endswith(": detail here")
    assert "_" not in said.split(":")[0]


@pytest.mark.parametrize("reason", list(DeferralReason))
def test_every_wait_has_words(reason: DeferralReason) -> None:
    said = words.reason_words(DeliveryState.DEFERRED, reason.value)
    assert said.startswith("waits for ")
    assert "_" not in said


def test_a_suppressed_address_says_why_it_is() -> None:
    stored = delivery_reason(RefusalReason.SUPPRESSED, SuppressionReason.SMS_STOP.value)
    said = words.reason_words(DeliveryState.SUPPRESSED, stored)
    assert said == "the address is suppressed: the person replied STOP"
    assert words.reason_words(DeliveryState.SENT, None) == ""


def test_waits_say_when_in_the_persons_zone_or_in_utc() -> None:
    first = (dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.UTC), "Asia/Tokyo")
    last = (dt.datetime(2026, 12, 8, 13, 0, tzinfo=dt.UTC), "America/New_York")
    legal = words.waiting_sentence(
        "legal_window", {"sms": 31, "voice": 1}, first=first, last=last, now=NOW
    )
    assert legal == (
        "31 SMS and 1 call wait for the legal window for marketing SMS and calls "
        "(08:00\N{EN DASH}21:00 in each person's time zone); the first go at 08:00 Asia/Tokyo, "
        "8 Dec, the last at 08:00 America/New_York, 8 Dec."
    )
    throttled = words.waiting_sentence("throttled", {"email": 1}, first=first, last=first, now=NOW)
    assert throttled.endswith("; it goes at 23:00 UTC, 7 Dec.")  # a throttle keeps UTC time
    due = (NOW - dt.timedelta(minutes=1), "UTC")
    assert words.waiting_sentence("digest", {"email": 2}, first=due, last=due, now=NOW).endswith(
        "they all go now."
    )
    paused = words.waiting_sentence("paused", {"email": 2}, first=due, last=due, now=NOW)
    assert paused == "2 e-mails wait for the campaign to be resumed (it is paused)."
    next_year = dt.datetime(2027, 1, 2, 9, 0, tzinfo=dt.UTC)
    assert words.moment(next_year, "Nowhere/Else", now=NOW) == "09:00 UTC, 2 Jan 2027"


def test_the_chart_is_well_formed_and_refuses_figures_that_do_not_fit() -> None:
    points = [NOW + dt.timedelta(hours=i) for i in range(4)]
    lines = [charts.Line("sent", "Sent <&>", [0, 5, 9, 12], "#1d4ed8")]
    svg = charts.line_chart(
        chart_id="c", title="T & t", description="D", points=points, lines=lines
    )
    root = ET.fromstring(str(svg))
    assert root.get("aria-label") == "T & t"
    (line,) = root.iter("{http://www.w3.org/2000/svg}polyline")
    assert line.get("data-values") == "0 5 9 12"
    labels = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert labels[:4] == ["0", "5", "10", "15"]  # round steps up past the top figure
    with pytest.raises(ValueError, match="3 values for 4 points"):
        charts.line_chart(
            chart_id="c",
            title="T",
            description="D",
            points=points,
            lines=[charts.Line("sent", "Sent", [0, 1, 2], "#000")],
        )
    assert charts.nice_ticks(0) == [0, 1]
    assert charts.nice_ticks(130_000) == [0, 50_000, 100_000, 150_000]


def test_buckets_grow_with_the_span_and_the_counts_add_up() -> None:
    assert step_for(dt.timedelta(minutes=30)) == 60
    assert step_for(dt.timedelta(hours=3)) == 300
    assert step_for(dt.timedelta(days=1)) == 1800
    assert step_for(dt.timedelta(days=400)) == STEPS[-1]
    start = dt.datetime(2026, 12, 7, 10, 0, tzinfo=dt.UTC)
    minutes = {
        ("sent", start): 2,
        ("sent", start + dt.timedelta(minutes=90)): 3,
        ("delivered", start + dt.timedelta(minutes=91)): 4,
    }
    drawn = timeline(minutes)
    assert drawn is not None
    assert drawn.step == dt.timedelta(minutes=5)
    assert drawn.series["sent"][-1] == 5
    assert drawn.series["delivered"][-1] == 4
    assert drawn.series["failed"] == [0] * len(drawn.ends)
    assert drawn.ends[-1] > start + dt.timedelta(minutes=91)
    assert timeline({}) is None
