"""Pause a channel whose provider is down, and resume it by itself (RELIABILITY 6).

Retrying each message with its own backoff would spend every attempt of every message
during a long outage and then give them all up. Instead, a batch that met only "the provider
is unavailable" pauses its channel: its messages wait for the pause to end with their
attempts unspent, and the batches behind them are put off without a call. The first batch
let through after the pause is the probe; the others wait while it is out (so a backlog of
thousands does not storm a provider that is just coming back). An answer resumes the
channel; another refusal pauses it twice as long, up to five minutes.

`Pauses` keeps them in this process: right on the embedded default, where one process sends
everything. With Redis, `hub.dispatch.shared_pause.SharedPauses` keeps the same rules for
every process and machine at once (RELIABILITY 30); the composition root picks one.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import Protocol

from hub.domain import Channel
from hub.metrics import CHANNEL_PAUSES

log = logging.getLogger("hub.dispatch")
LONGEST = 300.0  # seconds: how long a down provider may go unprobed


@dataclass(frozen=True, slots=True)
class Admission:
    put_off_until: dt.datetime | None = None
    probe: bool = False  # the first batch after a pause: it tells whether the provider is back


class PauseBoard(Protocol):
    """Where a hub keeps its channel pauses; the dispatcher asks it before and after a batch."""

    def admit(self, channel: Channel, now: dt.datetime) -> Admission:
        """Whether to send the batch now, or put it off (the channel is paused) until when."""
        ...

    def probed(self, channel: Channel) -> None:
        """The probe batch ended without an answer either way: let the next batch probe."""
        ...

    def trip(
        self, channel: Channel, now: dt.datetime, *, why: str, retry_after: float | None = None
    ) -> dt.datetime:
        """Pause the channel (or keep the pause already running) and say until when."""
        ...

    def resume(self, channel: Channel, now: dt.datetime) -> None:
        """The provider answered: the channel runs again."""
        ...

    def close(self) -> None:
        """Release what the board holds (a connection pool); the process is stopping."""
        ...


def announce_pause(channel: Channel, *, why: str, seconds: float, down: float) -> None:
    """Count and log a new pause (once, by the process that made it)."""
    CHANNEL_PAUSES.labels(channel.value).inc()
    log.warning(
        "%s: the provider is unavailable (%s); pausing the channel for %.1f s, down for "
        "%.1f s so far; the waiting messages keep their attempts",
        channel.value,
        why,
        seconds,
        down,
    )


def announce_resume(channel: Channel, *, down: float) -> None:
    log.warning(
        "%s: the provider answers again after %.1f s; the channel resumes", channel.value, down
    )


@dataclass(slots=True)
class _Pause:
    until: dt.datetime
    seconds: float
    since: dt.datetime  # when the outage was first seen
    probe: dt.datetime | None = None  # when the batch probing the provider was let through


class Pauses:
    def __init__(self, *, first: float, longest: float = LONGEST) -> None:
        self.first = min(first, longest)
        self.longest = longest
        self._pauses: dict[Channel, _Pause] = {}
        self._lock = threading.Lock()

    def admit(self, channel: Channel, now: dt.datetime) -> Admission:
        """Whether to send the batch now, or put it off (the channel is paused) until when."""
        with self._lock:
            pause = self._pauses.get(channel)
            if pause is None:
                return Admission()
            if pause.until > now:
                return Admission(put_off_until=pause.until)
            stuck = pause.probe is not None and now - pause.probe > dt.timedelta(
                seconds=self.longest
            )
            if pause.probe is None or stuck:
                pause.probe = now  # this batch finds out whether the provider is back
                return Admission(probe=True)
            # while the probe is out
            return Admission(put_off_until=now + dt.timedelta(seconds=self.first))

    def probed(self, channel: Channel) -> None:
        """The probe batch ended without an answer either way (nothing was sent, or it
        failed before the provider answered): let the next batch probe."""
        with self._lock:
            pause = self._pauses.get(channel)
            if pause is not None:
                pause.probe = None

    def trip(
        self, channel: Channel, now: dt.datetime, *, why: str, retry_after: float | None = None
    ) -> dt.datetime:
        """Pause the channel (or keep the pause already running) and say until when."""
        with self._lock:
            last = self._pauses.get(channel)
            if last is not None and last.until > now and last.probe is None:
                return last.until  # batches sent together all fail together: one pause
            seconds = self.first if last is None else min(self.longest, last.seconds * 2)
            seconds = max(seconds, retry_after or 0.0)
            since = now if last is None else last.since
            pause = _Pause(now + dt.timedelta(seconds=seconds), seconds, since)
            self._pauses[channel] = pause
        announce_pause(channel, why=why, seconds=seconds, down=(now - since).total_seconds())
        return pause.until

    def resume(self, channel: Channel, now: dt.datetime) -> None:
        """The provider answered: the channel runs again."""
        with self._lock:
            pause = self._pauses.pop(channel, None)
        if pause is not None:
            announce_resume(channel, down=(now - pause.since).total_seconds())

    def close(self) -> None:
        return None
