"""When each of a campaign's deliveries may go: at the person's own local time, and no faster
than the campaign's throttle. Notifications without either are sent at once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from zoneinfo import ZoneInfo

from hub.db.models import Notification
from hub.domain import Channel, DeferralReason


class Pacing:
    def __init__(self, notification: Notification, sent_before: Mapping[Channel, int]) -> None:
        """`sent_before`: the deliveries of each channel earlier batches already paced."""
        self.local = (
            dt.datetime.fromisoformat(notification.local_at) if notification.local_at else None
        )
        self.rates = {Channel(k): float(v) for k, v in (notification.throttle or {}).items()}
        self.start = notification.created_at
        self.counts = dict(sent_before)

    @property
    def paced(self) -> bool:
        return self.local is not None or bool(self.rates)

    def moment(self, timezone: str, now: dt.datetime) -> dt.datetime:
        """When this person should hear it: the local time in their zone, or now."""
        if self.local is None:
            return now
        # A wall-clock time that does not exist on a DST change day moves forward with the
        # clocks; one that happens twice is the first (fold=0).
        local = self.local.replace(tzinfo=ZoneInfo(timezone))
        return max(now, local.astimezone(dt.UTC))

    def due(
        self, channel: Channel, moment: dt.datetime, now: dt.datetime
    ) -> tuple[dt.datetime, DeferralReason] | None:
        """Until when a delivery waits, and why; None to queue it now."""
        reason = DeferralReason.LOCAL_TIME
        if rate := self.rates.get(channel):
            index = self.counts.get(channel, 0)
            self.counts[channel] = index + 1
            slot = self.start + dt.timedelta(seconds=index * 60 / rate)
            if slot > moment:
                moment, reason = slot, DeferralReason.THROTTLED
        return (moment, reason) if moment > now else None
