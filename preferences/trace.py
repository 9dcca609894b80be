"""The resolver's trace: the steps "explain" shows, written only when one was asked for."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from hub.domain import Channel, DeferralReason, RefusalReason
from hub.preferences import windows
from hub.preferences.model import (
    ContactView,
    QuietHours,
    Refusal,
    Step,
    SubscriptionView,
    TopicView,
)

# The consent step of a transactional topic with no subscription row: what "explain" shows.
IMPLIED_CONSENT = (
    "transactional: named by the sender, no subscription needed "
    "(a message to the whole topic reaches its subscribers only)"
)


@dataclass(frozen=True, slots=True)
class Digest:
    """When a digest goes: its time, and its weekday for a weekly one."""

    at: dt.time
    weekday: int | None  # None: every day


class Notes:
    """Writes the trace when one was asked for; costs nothing otherwise."""

    def __init__(self, trace: list[Step] | None) -> None:
        self.trace = trace

    def step(self, rule: str, verdict: str, detail: str) -> None:
        if self.trace is not None:
            self.trace.append(Step(rule, verdict, detail))

    def topic(
        self,
        contact: ContactView,
        topic: TopicView,
        subscription: SubscriptionView | None,
        refusal: RefusalReason | None,
    ) -> None:
        if self.trace is None:
            return
        if refusal is RefusalReason.WRONG_AUDIENCE:
            self.trace.append(
                Step(
                    "audience",
                    "refuse",
                    f"the topic is for {topic.audience.value}, "
                    f"the contact is a {contact.kind.value}",
                )
            )
            return
        self.trace.append(Step("audience", "pass", f"the topic is for {topic.audience.value}"))
        if topic.required:
            self.trace.append(
                Step("consent", "pass", "a required topic: unsubscribes do not apply")
            )
        elif refusal is not None:
            self.trace.append(Step("consent", "refuse", refusal.value))
        elif subscription is None:
            self.trace.append(Step("consent", "pass", IMPLIED_CONSENT))
        else:
            status = subscription.status.value if subscription else "none"
            self.trace.append(Step("consent", "pass", f"subscription {status}"))

    def refused(self, refusal: Refusal) -> None:
        if self.trace is not None:
            detail = refusal.reason.value + (f" ({refusal.detail})" if refusal.detail else "")
            self.trace.append(Step("channel", "refuse", detail, refusal.channel))

    def windows(
        self,
        channel: Channel,
        rules: Sequence[tuple[DeferralReason, QuietHours]],
        digest: Digest | None,
        *,
        zone: ZoneInfo,
        moment: dt.datetime,
        until: dt.datetime,
    ) -> None:
        if self.trace is None:
            return
        self.trace.append(
            Step("channel", "pass", "allowed, not blocked, has an address, not suppressed", channel)
        )
        local = moment.astimezone(zone).strftime("%H:%M")
        for reason, window in rules:
            span = f"{window.start:%H:%M}-{window.end:%H:%M} in {zone.key}"
            end = windows.release(window, moment, zone)
            verdict, said = (
                ("defer", f"{span}: closed at {local}")
                if end
                else ("pass", f"{span}: open at {local}")
            )
            self.trace.append(Step(reason.value, verdict, said, channel))
        if digest is not None:
            day = "daily" if digest.weekday is None else f"weekly, day {digest.weekday}"
            self.trace.append(
                Step("digest", "defer", f"{day} at {digest.at:%H:%M} {zone.key}", channel)
            )
        if until == moment:
            self.trace.append(Step("send", "pass", "send now", channel))
        else:
            self.trace.append(
                Step("send", "defer", f"until {until.astimezone(dt.UTC).isoformat()}", channel)
            )
