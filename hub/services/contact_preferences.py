"""Contact-wide preferences: channels never to use, quiet hours, digest time, unsubscribe
from everything, and whether the person lets us track opens and clicks."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Contact, ContactPreferences
from hub.domain import EventType
from hub.schemas.subscriptions import WEEKDAYS, PreferencesOut, PreferencesPatch
from hub.services import timeline
from hub.services.actor import Actor


def _state(row: ContactPreferences | None) -> dict[str, Any]:
    if row is None:
        return {
            "blocked_channels": [],
            "quiet_hours": None,
            "digest": None,
            "unsubscribed_all": False,
            "tracking_off": False,
        }
    quiet = None
    if row.quiet_start is not None and row.quiet_end is not None:
        quiet = {
            "start": row.quiet_start.isoformat("minutes"),
            "end": row.quiet_end.isoformat("minutes"),
        }
    digest = None
    if row.digest_time is not None:
        weekday = None if row.digest_weekday is None else WEEKDAYS[row.digest_weekday]
        digest = {"time": row.digest_time.isoformat("minutes"), "weekday": weekday}
    return {
        "blocked_channels": list(row.blocked_channels),
        "quiet_hours": quiet,
        "digest": digest,
        "unsubscribed_all": row.unsubscribed_all,
        "tracking_off": row.tracking_off,
    }


def view(row: ContactPreferences | None) -> PreferencesOut:
    return PreferencesOut.model_validate(
        {**_state(row), "updated_at": row.updated_at if row else None}
    )


def patch(
    session: Session, contact: Contact, data: PreferencesPatch, actor: Actor
) -> PreferencesOut:
    row = session.get(ContactPreferences, contact.id)
    before = _state(row)
    given = data.model_dump(mode="json", exclude_unset=True)
    if "blocked_channels" in given:
        given["blocked_channels"] = sorted(set(given["blocked_channels"] or []))
    # null means "as by default" for these switches: subscribed, and tracked.
    for switch in ("unsubscribed_all", "tracking_off"):
        if switch in given and given[switch] is None:
            given[switch] = False
    if data.quiet_hours is not None:
        given["quiet_hours"] = {
            "start": data.quiet_hours.start.isoformat("minutes"),
            "end": data.quiet_hours.end.isoformat("minutes"),
        }
    if data.digest is not None:
        given["digest"] = {
            "time": data.digest.time.isoformat("minutes"),
            "weekday": data.digest.weekday,
        }
    delta = timeline.diff(before, {**before, **given})
    if not delta:
        return view(row)
    now = utcnow()
    if row is None:
        row = ContactPreferences(
            contact_id=contact.id, blocked_channels=[], unsubscribed_all=False, tracking_off=False
        )
        session.add(row)
    after = {**before, **given}
    row.blocked_channels = after["blocked_channels"]
    row.unsubscribed_all = after["unsubscribed_all"]
    row.tracking_off = after["tracking_off"]
    if "quiet_hours" in given:
        quiet = data.quiet_hours
        row.quiet_start = quiet.start if quiet else None
        row.quiet_end = quiet.end if quiet else None
    if "digest" in given:
        chosen = data.digest
        row.digest_time = chosen.time.replace(second=0, microsecond=0) if chosen else None
        weekday = chosen.weekday if chosen else None
        row.digest_weekday = None if weekday is None else WEEKDAYS.index(weekday)
    row.updated_at = now
    session.flush()
    timeline.record(
        session,
        contact_id=contact.id,
        type=EventType.PREFERENCES_CHANGED,
        actor=actor,
        at=now,
        changes=delta,
    )
    return view(row)
