"""The preferences page's model: what a person may choose, and applying what they chose.

Each change goes through the same services as the API, so it is checked the same way and
lands on the timeline as an event with its actor (self-service), IP and user agent.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Contact, ContactPreferences, Subscription, Topic
from hub.domain import ADDRESS_FIELD, Channel, Frequency, SubscriptionStatus
from hub.schemas.subscriptions import (
    WEEKDAYS,
    DigestIn,
    PreferencesPatch,
    QuietHoursIn,
    SubscriptionIn,
)
from hub.selfservice.words import Words
from hub.services import contact_preferences, subscriptions
from hub.services.actor import Actor
from hub.services.errors import HubError

_TIME = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@dataclass(frozen=True)
class ChannelChoice:
    channel: Channel
    chosen: bool
    address: str | None  # masked, as shown; None: no address, the box is disabled


@dataclass(frozen=True)
class TopicChoice:
    topic: Topic
    subscribed: bool
    pending: bool
    channels: list[ChannelChoice]
    frequencies: list[Frequency]
    frequency: Frequency


@dataclass(frozen=True)
class PageModel:
    contact: Contact
    topics: list[TopicChoice]
    quiet_start: str
    quiet_end: str
    digest_time: str  # "" : the hub's
    digest_weekday: str  # "monday"...
    unsubscribed_all: bool
    tracked: bool  # the person lets us see opens and clicks (not `tracking_off`)

    weekdays = WEEKDAYS

    @property
    def offers_digest(self) -> bool:
        return any(len(t.frequencies) > 1 for t in self.topics)


@dataclass
class Outcome:
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # keys of the topics just unsubscribed from
    left_all: bool = False  # just unsubscribed from everything


def model(session: Session, contact: Contact) -> PageModel:
    """The public topics for the person's kind (and any they hold), as they stand now."""
    rows = session.execute(
        select(Topic, Subscription)
        .outerjoin(
            Subscription,
            (Subscription.topic_id == Topic.id) & (Subscription.contact_id == contact.id),
        )
        .where(Topic.public)
        .order_by(Topic.required.desc(), Topic.name)
    ).all()
    prefs = session.get(ContactPreferences, contact.id)
    topics = [
        _topic(contact, topic, subscription)
        for topic, subscription in rows
        if topic.audience.includes(contact.kind)
    ]
    return PageModel(
        contact=contact,
        topics=topics,
        quiet_start=prefs.quiet_start.strftime("%H:%M") if prefs and prefs.quiet_start else "",
        quiet_end=prefs.quiet_end.strftime("%H:%M") if prefs and prefs.quiet_end else "",
        digest_time=prefs.digest_time.strftime("%H:%M") if prefs and prefs.digest_time else "",
        digest_weekday=WEEKDAYS[prefs.digest_weekday if prefs and prefs.digest_weekday else 0],
        unsubscribed_all=bool(prefs and prefs.unsubscribed_all),
        tracked=not (prefs and prefs.tracking_off),
    )


def _topic(contact: Contact, topic: Topic, subscription: Subscription | None) -> TopicChoice:
    status = subscription.status if subscription else None
    chosen = list(subscription.channels) if subscription else list(topic.default_channels)
    # The person's order of preference first, then what else the topic allows.
    ordered = chosen + [c for c in topic.allowed_channels if c not in chosen]
    channels = [
        ChannelChoice(
            Channel(name),
            name in chosen and _address(contact, Channel(name)) is not None,
            _address(contact, Channel(name)),
        )
        for name in ordered
        if name in topic.allowed_channels
    ]
    return TopicChoice(
        topic=topic,
        subscribed=topic.required or status is SubscriptionStatus.SUBSCRIBED,
        pending=status is SubscriptionStatus.PENDING,
        channels=channels,
        frequencies=[Frequency(f) for f in topic.allowed_frequencies],
        frequency=subscription.frequency if subscription else Frequency.IMMEDIATE,
    )


def _address(contact: Contact, channel: Channel) -> str | None:
    value: str | None = getattr(contact, ADDRESS_FIELD[channel])
    if not value:
        return None
    if channel is Channel.EMAIL:
        local, _, domain = value.partition("@")
        return f"{local[:1]}…@{domain}"
    if channel in (Channel.SMS, Channel.VOICE):
        return f"…{value[-4:]}"
    return "•••"


def apply(
    session: Session,
    current: PageModel,
    form: Mapping[str, Sequence[str]],
    actor: Actor,
    words: Words,
) -> Outcome:
    """Save what the form says; the caller commits when `errors` is empty, else rolls back."""
    outcome = Outcome()
    contact = current.contact
    for choice in current.topics:
        key, name = choice.topic.key, choice.topic.name
        wanted = [c for c in form.get(f"channels:{key}", []) if c in choice.topic.allowed_channels]
        on = choice.topic.required or bool(form.get(f"topic:{key}"))
        frequency = _frequency(form.get(f"frequency:{key}"), choice)
        if not on:
            if choice.subscribed or choice.pending:
                _guarded(outcome, subscriptions.unsubscribe, session, contact, choice.topic, actor)
                outcome.changes.append(words("change.unsubscribed", topic=name))
                outcome.left.append(key)
            continue
        if not wanted:
            outcome.errors.append(words("need_channel", topic=name))
            continue
        before = [c.channel.value for c in choice.channels if c.chosen]
        data = SubscriptionIn(
            status=SubscriptionStatus.SUBSCRIBED,
            channels=[Channel(c) for c in _ordered(wanted, choice)],
            frequency=frequency,
        )
        _guarded(outcome, subscriptions.put, session, contact, choice.topic, data, actor)
        if not choice.subscribed:
            outcome.changes.append(words("change.subscribed", topic=name))
        if sorted(before) != sorted(wanted) and choice.subscribed:
            shown = ", ".join(words(f"ch.{c}") for c in _ordered(wanted, choice))
            outcome.changes.append(words("change.channels", topic=name, channels=shown))
        if frequency is not choice.frequency and len(choice.frequencies) > 1:
            outcome.changes.append(
                words("change.frequency", topic=name, frequency=words(f"freq.{frequency}"))
            )
    _preferences(session, current, form, actor=actor, words=words, outcome=outcome)
    return outcome


def _ordered(wanted: list[str], choice: TopicChoice) -> list[str]:
    order = [c.channel.value for c in choice.channels]
    return sorted(set(wanted), key=order.index)


def _frequency(given: Sequence[str] | None, choice: TopicChoice) -> Frequency:
    if given and given[0] in {f.value for f in choice.frequencies}:
        return Frequency(given[0])
    return choice.frequency


def _preferences(
    session: Session,
    current: PageModel,
    form: Mapping[str, Sequence[str]],
    *,
    actor: Actor,
    words: Words,
    outcome: Outcome,
) -> None:
    start, end = _one(form, "quiet_start"), _one(form, "quiet_end")
    everything = bool(form.get("unsubscribed_all"))
    patch: dict[str, object] = {}
    if (start, end) != (current.quiet_start, current.quiet_end):
        if not start and not end:
            patch["quiet_hours"] = None
            outcome.changes.append(words("change.quiet_off"))
        elif _TIME.match(start) and _TIME.match(end) and start != end:
            patch["quiet_hours"] = QuietHoursIn(
                start=dt.time.fromisoformat(start), end=dt.time.fromisoformat(end)
            )
            outcome.changes.append(words("change.quiet", start=start, end=end))
        else:
            outcome.errors.append(words("quiet.both"))
    if current.offers_digest:
        _digest(current, form, patch, words=words, outcome=outcome)
    if everything != current.unsubscribed_all:
        patch["unsubscribed_all"] = everything
        outcome.left_all = everything
        outcome.changes.append(words("change.all_on" if everything else "change.all_off"))
    # An unticked box is not sent at all, so the page also sends `tracking_asked`: a form
    # without it (an older page, another client) leaves the person's choice alone.
    if form.get("tracking_asked"):
        tracked = bool(form.get("tracking"))
        if tracked != current.tracked:
            patch["tracking_off"] = not tracked
            outcome.changes.append(
                words("change.tracking_on" if tracked else "change.tracking_off")
            )
    if patch and not outcome.errors:
        data = PreferencesPatch.model_validate(patch)
        _guarded(outcome, contact_preferences.patch, session, current.contact, data, actor)


def _digest(
    current: PageModel,
    form: Mapping[str, Sequence[str]],
    patch: dict[str, object],
    *,
    words: Words,
    outcome: Outcome,
) -> None:
    at = _one(form, "digest_time")
    day = (form.get("digest_weekday") or [""])[0]
    day = day if day in WEEKDAYS else current.digest_weekday
    if (at, day) == (current.digest_time, current.digest_weekday):
        return
    if not at:
        if current.digest_time:
            patch["digest"] = None
            outcome.changes.append(words("change.digest_off"))
        return
    if not _TIME.match(at):
        outcome.errors.append(words("digest.bad"))
        return
    patch["digest"] = DigestIn(time=dt.time.fromisoformat(at), weekday=day)
    outcome.changes.append(words("change.digest", time=at, day=words(f"day.{day}")))


def _one(form: Mapping[str, Sequence[str]], name: str) -> str:
    values = form.get(name) or [""]
    return values[0].strip()[:5]


def _guarded(outcome: Outcome, change: Callable[..., object], *args: object) -> None:
    """Run one service call; its refusal becomes a message on the page, not an error page."""
    try:
        change(*args)
    except HubError as exc:
        outcome.errors.append(exc.message)
