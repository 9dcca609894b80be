"""When a campaign's occurrences fall: now, at an instant, at a wall-clock time in each
recipient's own zone, or on a recurring rule (cron or RFC 5545) in a given zone.

Pure functions of the schedule and a moment, so the scheduler and the API agree, and tests
need no clock.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from croniter import croniter
from dateutil.rrule import rrulestr
from pydantic import AfterValidator, Field, model_validator

from hub.fields import TimeZone
from hub.schemas.base import Strict

# The zone furthest ahead (Kiribati, UTC+14): a local-time campaign starts fanning out when
# 10:00 first happens anywhere; each delivery then waits for 10:00 in its person's zone.
EARLIEST_OFFSET = dt.timedelta(hours=14)


def _aware(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        raise ValueError("needs a time zone, e.g. 2026-12-01T09:00:00Z")
    return value.astimezone(dt.UTC)


def _naive(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is not None:
        raise ValueError("is a wall-clock time in each recipient's zone: leave out the offset")
    return value


class Now(Strict):
    """As soon as it is scheduled."""

    kind: Literal["now"] = Field("now", description="`now`.")


class At(Strict):
    """Everyone at one instant."""

    kind: Literal["at"] = Field("at", description="`at`.")
    at: Annotated[dt.datetime, AfterValidator(_aware)] = Field(
        description="The instant, with its offset, e.g. 2026-12-01T09:00:00Z."
    )


class LocalTime(Strict):
    """Everyone at the same wall-clock time in their own zone, e.g. 2026-12-01T10:00."""

    kind: Literal["local"] = Field("local", description="`local`.")
    at: Annotated[dt.datetime, AfterValidator(_naive)] = Field(
        description="The wall-clock date and time, without an offset: each person's own."
    )


class Recurring(Strict):
    """A cron expression ("0 10 * * MON") or an RFC 5545 rule ("FREQ=WEEKLY;BYDAY=MO;
    BYHOUR=10;BYMINUTE=0"), read in `timezone`; `until` ends it."""

    kind: Literal["recurring"] = Field("recurring", description="`recurring`.")
    cron: str | None = Field(
        None, max_length=200, description='A cron expression, e.g. "0 10 * * MON"; or `rrule`.'
    )
    rrule: str | None = Field(
        None,
        max_length=500,
        description='An RFC 5545 rule, e.g. "FREQ=WEEKLY;BYDAY=MO;BYHOUR=10;BYMINUTE=0"; or '
        "`cron`.",
    )
    timezone: TimeZone = Field("UTC", description="The IANA zone the rule is read in.")
    until: Annotated[dt.datetime, AfterValidator(_aware)] | None = Field(
        None, description="No occurrence after this instant (with its offset)."
    )
    start: Annotated[dt.datetime, AfterValidator(_aware)] | None = Field(
        None, description="Where an rrule's count and interval start; set when scheduled."
    )

    @model_validator(mode="after")
    def _one_rule(self) -> Recurring:
        if (self.cron is None) == (self.rrule is None):
            raise ValueError("give exactly one of cron and rrule")
        if self.cron is not None and not croniter.is_valid(self.cron):
            raise ValueError(f"cron {self.cron!r} is not a valid cron expression")
        if self.rrule is not None:
            try:
                rrulestr(self.rrule, dtstart=dt.datetime(2026, 1, 1))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"rrule is not an RFC 5545 rule: {exc}") from None
        return self


Schedule = Annotated[Now | At | LocalTime | Recurring, Field(discriminator="kind")]


def anchored(
    schedule: Now | At | LocalTime | Recurring, now: dt.datetime
) -> Now | At | LocalTime | Recurring:
    """The schedule with a recurring rule's start fixed at `now` (when it was scheduled), so
    its COUNT and INTERVAL count from there, whatever the scheduler's ticks."""
    if isinstance(schedule, Recurring) and schedule.start is None:
        return schedule.model_copy(update={"start": now.replace(microsecond=0)})
    return schedule


def first_run(schedule: Now | At | LocalTime | Recurring, now: dt.datetime) -> dt.datetime:
    """When the first occurrence is dispatched."""
    match schedule:
        case Now():
            return now
        case At(at=at):
            return max(at, now)
        case LocalTime(at=at):
            return max(at.replace(tzinfo=dt.UTC) - EARLIEST_OFFSET, now)
        case Recurring():
            following = next_run(schedule, now - dt.timedelta(seconds=1))
            if following is None:
                raise ValueError("the rule has no occurrence after now")
            return following
    raise AssertionError(schedule)


def next_run(schedule: Now | At | LocalTime | Recurring, after: dt.datetime) -> dt.datetime | None:
    """The occurrence after `after`, for recurring schedules; None when there is none."""
    if not isinstance(schedule, Recurring):
        return None
    zone = ZoneInfo(schedule.timezone)
    local = after.astimezone(zone)
    if schedule.cron is not None:
        following: dt.datetime = croniter(schedule.cron, local).get_next(dt.datetime)
    else:
        assert schedule.rrule is not None
        origin = (schedule.start or after).astimezone(zone).replace(tzinfo=None, microsecond=0)
        rule = rrulestr(schedule.rrule, dtstart=origin)
        found = rule.after(local.replace(tzinfo=None), inc=False)
        if found is None:
            return None
        following = found.replace(tzinfo=zone)
    at = following.astimezone(dt.UTC)
    if schedule.until is not None and at > schedule.until:
        return None
    return at


def local_at(schedule: Now | At | LocalTime | Recurring) -> str | None:
    """The wall-clock time each delivery waits for, for a local-time schedule."""
    return schedule.at.isoformat(timespec="minutes") if isinstance(schedule, LocalTime) else None
