"""Plain, immutable views of what the resolver decides from: no database, no web app."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field

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


@dataclass(frozen=True, slots=True)
class ContactView:
    kind: ContactKind
    timezone: str  # IANA name, validated on the way in
    addresses: Mapping[Channel, str]  # only the channels the contact has an address for


@dataclass(frozen=True, slots=True)
class Caps:
    """At most so many marketing messages per person per rolling day and week, across all
    channels and topics; past it a message waits (or, with `drop`, is refused)."""

    per_day: int | None = None
    per_week: int | None = None
    drop: bool = False

    @property
    def active(self) -> bool:
        return self.per_day is not None or self.per_week is not None


@dataclass(frozen=True, slots=True)
class History:
    """The marketing messages a person already got (or has on the way) in the windows."""

    day: int = 0
    week: int = 0
    day_oldest: dt.datetime | None = None  # when the oldest of the day's leaves the window
    week_oldest: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class TopicView:
    """`required`: the person cannot unsubscribe (implicitly subscribed). `category`: which
    rules its messages follow; None takes the API's default, transactional when required."""

    key: str
    audience: Audience
    allowed_channels: tuple[Channel, ...]
    default_channels: tuple[Channel, ...]
    required: bool = False
    bypass_quiet_hours: bool = False
    caps: Caps = Caps()
    category: TopicCategory | None = None

    @property
    def marketing(self) -> bool:
        """Marketing rules apply: the legal window for SMS and calls, the frequency caps, an
        erasure's suppression."""
        if self.category is None:
            return not self.required
        return self.category == TopicCategory.MARKETING


@dataclass(frozen=True, slots=True)
class SubscriptionView:
    status: SubscriptionStatus
    channels: tuple[Channel, ...]  # in order of preference
    frequency: Frequency = Frequency.IMMEDIATE


@dataclass(frozen=True, slots=True)
class QuietHours:
    """A daily local-time window; start > end means it wraps past midnight (22:00-07:00)."""

    start: dt.time
    end: dt.time


@dataclass(frozen=True, slots=True)
class PreferencesView:
    blocked_channels: frozenset[Channel] = frozenset()
    quiet_hours: QuietHours | None = None
    unsubscribed_all: bool = False
    digest_time: dt.time | None = None  # the person's own digest time (else the policy's)
    digest_weekday: int | None = None  # 0 = Monday, for weekly digests


@dataclass(frozen=True, slots=True)
class SuppressionView:
    channel: Channel
    reason: SuppressionReason
    until: dt.datetime | None = None  # None: until removed


@dataclass(frozen=True, slots=True)
class Policy:
    """House rules that are not any one person's choice."""

    # Marketing SMS and voice only inside this local window (RELIABILITY 17).
    legal_window: QuietHours | None = QuietHours(dt.time(8, 0), dt.time(21, 0))
    legal_window_channels: frozenset[Channel] = frozenset({Channel.SMS, Channel.VOICE})
    digest_time: dt.time = dt.time(9, 0)  # local time a daily/weekly digest goes out
    digest_weekday: int = 0  # Monday, for weekly digests


@dataclass(frozen=True, slots=True)
class Refusal:
    channel: Channel
    reason: RefusalReason
    detail: str | None = None  # e.g. the suppression reason


@dataclass(frozen=True, slots=True)
class Deferral:
    channel: Channel
    until: dt.datetime  # aware, UTC
    reason: DeferralReason


@dataclass(frozen=True, slots=True)
class Resolution:
    send_now: tuple[Channel, ...] = ()
    deferred: tuple[Deferral, ...] = ()
    refused: tuple[Refusal, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Step:
    """One rule the resolver looked at, and what it found: the explanation of a decision."""

    rule: str  # audience, consent, channel, address, suppression, legal_window, quiet_hours...
    verdict: str  # "pass", "refuse" or "defer"
    detail: str
    channel: Channel | None = None
