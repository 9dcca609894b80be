"""Daily local-time windows turned into real instants, daylight-saving transitions included.

A window such as 22:00-07:00 means something different every day: on the night the clocks
change it is an hour longer or shorter, and some of its wall times may not exist at all. So a
window is never checked against a bare wall-clock reading; each day's *occurrence* is resolved
to a half-open interval of instants, and every question is asked of those intervals:

* a wall time that happens twice (clocks go back) means its first occurrence (``fold=0``);
* a wall time that never happens (clocks go forward) means the first instant after the gap,
  which is the moment of the transition itself.

This mapping never runs backwards (a later wall time never gives an earlier instant), so the
occurrences of one window never overlap and "the end of the occurrence holding this instant"
is the next instant the window releases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from zoneinfo import ZoneInfo

from hub.preferences.model import QuietHours

UTC = dt.UTC
_MICROSECOND = dt.timedelta(microseconds=1)
_DAY = dt.timedelta(days=1)

# Every search runs over a bounded stretch of days. Windows repeat daily and a transition
# can swallow at most one day's opening, so a few days always suffice; a weekly digest
# needs a week more. The margins absorb transitions at or near midnight.
_OPEN_SEARCH_DAYS = 8
_DUE_SEARCH_DAYS = range(-3, 11)


def is_empty(window: QuietHours) -> bool:
    """A window whose start equals its end covers no time at all."""
    return window.start == window.end


def complement(window: QuietHours) -> QuietHours:
    """The hours outside ``window``: turns an allowed window into the window it forbids."""
    return QuietHours(start=window.end, end=window.start)


def wall_to_instant(day: dt.date, wall: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant at which clocks in ``zone`` read ``wall`` on ``day``.

    Repeated wall times take their first occurrence; missing ones take the first instant
    after the gap.
    """
    naive = dt.datetime.combine(day, wall.replace(tzinfo=None))
    first = naive.replace(tzinfo=zone, fold=0)
    if first.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == naive:
        return first.astimezone(UTC)
    # Inside a gap the two folds read the wall time with the offsets from either side of the
    # transition, so they bracket it; the transition is the first instant with the new offset.
    low, high = sorted((first.astimezone(UTC), naive.replace(tzinfo=zone, fold=1).astimezone(UTC)))
    return _first_instant_with_offset_of(high, after=low, zone=zone)


def _first_instant_with_offset_of(
    high: dt.datetime, *, after: dt.datetime, zone: ZoneInfo
) -> dt.datetime:
    target = high.astimezone(zone).utcoffset()
    low = after
    while high - low > _MICROSECOND:
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return high


def occurrence(window: QuietHours, day: dt.date, zone: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """The instants ``[start, end)`` of the occurrence of ``window`` that starts on ``day``."""
    end_day = day + _DAY if window.start > window.end else day
    return wall_to_instant(day, window.start, zone), wall_to_instant(end_day, window.end, zone)


def release(window: QuietHours, moment: dt.datetime, zone: ZoneInfo) -> dt.datetime | None:
    """When the occurrence of ``window`` holding ``moment`` ends, or None if none holds it."""
    if is_empty(window):
        return None
    local_day = moment.astimezone(zone).date()
    # An occurrence starting the day before holds the early hours of a wrapping window; the
    # outer days only matter when a transition near midnight moves a date boundary.
    for shift in (-2, -1, 0, 1):
        start, end = occurrence(window, local_day + shift * _DAY, zone)
        if start <= moment < end:
            return end
    return None


def is_inside(window: QuietHours, moment: dt.datetime, zone: ZoneInfo) -> bool:
    """Whether ``moment`` falls in an occurrence of ``window`` in ``zone``."""
    return release(window, moment, zone) is not None


def covers_whole_day(windows: Sequence[QuietHours]) -> bool:
    """Whether the windows together leave no wall-clock time of day outside them."""
    spans: list[tuple[dt.timedelta, dt.timedelta]] = []
    for window in windows:
        if is_empty(window):
            continue
        start, end = _since_midnight(window.start), _since_midnight(window.end)
        if start < end:
            spans.append((start, end))
        else:
            spans.extend([(start, _DAY), (dt.timedelta(0), end)])
    reached = dt.timedelta(0)
    for start, end in sorted(spans):
        if start > reached:
            return False
        reached = max(reached, end)
    return reached >= _DAY


def _since_midnight(wall: dt.time) -> dt.timedelta:
    return dt.timedelta(
        hours=wall.hour, minutes=wall.minute, seconds=wall.second, microseconds=wall.microsecond
    )


def next_open(moment: dt.datetime, zone: ZoneInfo, windows: Sequence[QuietHours]) -> dt.datetime:
    """The earliest instant at or after ``moment`` that lies outside every window.

    Raises:
        ValueError: if the windows leave no such instant, i.e. they cover the whole day.
    """
    candidate = moment
    limit = moment + _OPEN_SEARCH_DAYS * _DAY
    while candidate <= limit:
        for window in windows:
            end = release(window, candidate, zone)
            if end is not None:
                candidate = end
                break
        else:
            return candidate
    raise ValueError("the windows leave no time of day open")


def next_due(
    moment: dt.datetime,
    zone: ZoneInfo,
    *,
    at: dt.time,
    weekday: int | None,
    windows: Sequence[QuietHours],
) -> dt.datetime:
    """The earliest digest instant at or after ``moment``.

    A digest falls due at the wall time ``at`` (on ``weekday`` only, if given), moved forward
    out of any of ``windows`` it lands in. Since both steps never run backwards, the due
    instants are in date order and the first one not before ``moment`` is the earliest.

    Raises:
        ValueError: if ``weekday`` is not 0-6 or the windows cover the whole day.
    """
    if weekday is not None and not 0 <= weekday <= 6:
        raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), not {weekday}")
    local_day = moment.astimezone(zone).date()
    for shift in _DUE_SEARCH_DAYS:
        day = local_day + shift * _DAY
        if weekday is not None and day.weekday() != weekday:
            continue
        due = next_open(wall_to_instant(day, at, zone), zone, windows)
        if due >= moment:
            return due
    raise AssertionError("a daily or weekly due time always exists within the search range")
