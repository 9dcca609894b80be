"""Campaign schedules as pure functions of a moment: instants, local times, cron, RFC 5545."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import TypeAdapter, ValidationError

from hub.schemas.schedules import (
    At,
    LocalTime,
    Now,
    Recurring,
    Schedule,
    anchored,
    first_run,
    local_at,
    next_run,
)

Spec = Now | At | LocalTime | Recurring
SCHEDULE: TypeAdapter[Spec] = TypeAdapter(Schedule)
NOW = dt.datetime(2026, 3, 27, 12, 0, tzinfo=dt.UTC)  # the Friday before Europe's DST change


def parse(value: dict[str, object]) -> Spec:
    return SCHEDULE.validate_python(value)


def test_now_and_an_instant() -> None:
    assert first_run(parse({"kind": "now"}), NOW) == NOW
    later = parse({"kind": "at", "at": "2026-03-28T09:00:00+03:00"})
    assert first_run(later, NOW) == dt.datetime(2026, 3, 28, 6, 0, tzinfo=dt.UTC)
    past = parse({"kind": "at", "at": "2026-03-01T09:00:00Z"})
    assert first_run(past, NOW) == NOW


def test_a_local_time_starts_where_it_happens_first() -> None:
    local = parse({"kind": "local", "at": "2026-03-29T10:00"})
    # 10:00 happens first at UTC+14: 20:00 UTC the day before.
    assert first_run(local, NOW) == dt.datetime(2026, 3, 28, 20, 0, tzinfo=dt.UTC)
    assert local_at(local) == "2026-03-29T10:00"
    assert next_run(local, NOW) is None


def test_cron_is_read_in_its_zone_across_a_dst_change() -> None:
    weekly = parse({"kind": "recurring", "cron": "0 10 * * SUN", "timezone": "Europe/Berlin"})
    first = first_run(weekly, NOW)
    assert first == dt.datetime(2026, 3, 29, 8, 0, tzinfo=dt.UTC)  # CEST since 02:00 that day
    second = next_run(weekly, first)
    assert second == dt.datetime(2026, 4, 5, 8, 0, tzinfo=dt.UTC)
    before = next_run(weekly, dt.datetime(2026, 3, 20, 12, 0, tzinfo=dt.UTC))
    assert before == dt.datetime(2026, 3, 22, 9, 0, tzinfo=dt.UTC)  # still CET: UTC+1


def test_an_rrule_counts_from_when_it_was_scheduled_and_stops() -> None:
    rule = anchored(
        parse({"kind": "recurring", "rrule": "FREQ=DAILY;COUNT=2", "timezone": "UTC"}),
        NOW,
    )
    first = first_run(rule, NOW)
    assert first == NOW
    second = next_run(rule, first)
    assert second == NOW + dt.timedelta(days=1)
    assert second is not None
    assert next_run(rule, second) is None
    until = parse({"kind": "recurring", "cron": "0 * * * *", "until": "2026-03-27T13:30:00Z"})
    assert next_run(until, NOW) == dt.datetime(2026, 3, 27, 13, 0, tzinfo=dt.UTC)
    assert next_run(until, NOW + dt.timedelta(hours=1)) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"kind": "at", "at": "2026-03-28T09:00:00"},
        {"kind": "local", "at": "2026-03-28T09:00:00Z"},
        {"kind": "recurring"},
        {"kind": "recurring", "cron": "0 10 * * SUN", "rrule": "FREQ=DAILY"},
        {"kind": "recurring", "cron": "every day"},
        {"kind": "recurring", "rrule": "FREQ=SOMETIMES"},
        {"kind": "recurring", "cron": "0 10 * * *", "timezone": "Mars/Base"},
        {"kind": "weekly"},
    ],
)
def test_bad_schedules_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        parse(bad)
