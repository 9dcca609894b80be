"""The preferences page's model: what a person may choose, and applying what they chose.

Each change goes through the same services as the API, so it is checked the same way and
lands on the timeline as an event with its actor (self-service), IP and user agent.

An employee's page also lists the five topics about their clients (`ClientTopic`), each with
whose clients it is about (`ClientScope`). Their rows may not exist yet: the page shows them
from their definitions and creates a row only when the employee subscribes (a GET writes
nothing).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Contact, ContactPreferences, Subscription, Topic
from hub.domain import (
    ADDRESS_FIELD,
    Channel,
    ClientScope,
    ClientTopic,
    ContactKind,
    Frequency,
    SubscriptionStatus,
)
from hub.schemas.subscriptions import (
    WEEKDAYS,
    DigestIn,
    PreferencesPatch,
    QuietHoursIn,
    SubscriptionIn,
)
from hub.selfservice.words import Words
from hub.services import client_topics, contact_preferences, subscriptions, topics
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
    # A client topic's choice of whose clients: what this person may pick, and what is saved
    # (None: not saved yet). Empty and None for every other topic.
    scopes: list[ClientScope] = field(default_factory=list)
    scope: ClientScope | None = None

    @property
    def made(self) -> bool:
        """False for a client topic shown from its definition: no row until someone subscribes."""
        return self.topic.id is not None


@dataclass(frozen=True)
class PageModel:
    contact: Contact
    topics: list[TopicChoice]
    client_topics: list[TopicChoice]  # employees only; shown as a group after the others
    quiet_start: str
    quiet_end: str
    digest_time: str  # "" : the hub's
    digest_weekday: str  # "monday"...
    unsubscribed_all: bool
    tracked: bool  # the person lets us see opens and clicks (not `tracking_off`)

    weekdays = WEEKDAYS

    @property
    def every_topic(self) -> list[TopicChoice]:
        return self.topics + self.client_topics

    @property
    def offers_digest(self) -> bool:
        return any(len(t.frequencies) > 1 for t in self.every_topic)


@dataclass
class Outcome:
    changes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    left: list[str] = field(default_factory=list)  # keys of the topics just unsubscribed from
    left_all: bool = False  # just unsubscribed from everything


def model(session: Session, contact: Contact) -> PageModel:
    """The public topics for the person's kind, as they stand now; for an employee, the
    client topics too."""
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
        if topic.audience.includes(contact.kind) and not client_topics.is_client_topic(topic.key)
    ]
    return PageModel(
        contact=contact,
        topics=topics,
        client_topics=_client_topics(session, contact, rows),
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


def _client_topics(
    session: Session, contact: Contact, rows: Sequence[tuple[Topic, Subscription | None]]
) -> list[TopicChoice]:
    """The five client topics in their order: each from its row when it has one (public: staff
    may rename or hide one), else from its definition, unsaved."""
    if contact.kind is not ContactKind.EMPLOYEE:
        return []
    found = {topic.key: (topic, subscription) for topic, subscription in rows}
    existing = session.scalars(select(Topic.key).where(Topic.key.in_(client_topics.KEYS)))
    hidden = set(existing) - set(found)  # rows staff made not public
    offered = [ClientScope.MINE, ClientScope.TEAMS]
    if subscriptions.sees_all(session, contact.id):
        offered.append(ClientScope.ALL)
    shown = []
    for key in (k.value for k in ClientTopic if k.value not in hidden):
        topic, subscription = found.get(key) or (_unsaved(key), None)
        saved = subscription.scope if subscription else None
        shown.append(
            replace(
                _topic(contact, topic, subscription),
                scopes=offered,
                scope=ClientScope(saved) if saved else None,
            )
        )
    return shown


def _unsaved(key: str) -> Topic:
    """The topic a client key becomes, never added to the session: the page shows it, and
    `topics.get` makes the row when someone subscribes."""
    made = client_topics.definition(key)
    assert made is not None, key  # every ClientTopic has a definition
    return Topic(
        key=key,
        **made.model_dump(mode="json", exclude={"audience", "category"}),
        audience=made.audience,
        category=made.category,
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
    for choice in current.every_topic:
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
        scope = _scope(form.get(f"scope:{key}"), choice, words=words, outcome=outcome)
        if choice.scopes and scope is None:
            continue
        topic = _row(session, choice, outcome)
        if topic is None:
            continue
        before = [c.channel.value for c in choice.channels if c.chosen]
        data = SubscriptionIn(
            status=SubscriptionStatus.SUBSCRIBED,
            channels=[Channel(c) for c in _ordered(wanted, choice)],
            frequency=frequency,
            scope=scope,
        )
        _guarded(outcome, subscriptions.put, session, contact, topic, data, actor)
        if not choice.subscribed:
            outcome.changes.append(words("change.subscribed", topic=name))
        if sorted(before) != sorted(wanted) and choice.subscribed:
            shown = ", ".join(words(f"ch.{c}") for c in _ordered(wanted, choice))
            outcome.changes.append(words("change.channels", topic=name, channels=shown))
        if frequency is not choice.frequency and len(choice.frequencies) > 1:
            outcome.changes.append(
                words("change.frequency", topic=name, frequency=words(f"freq.{frequency}"))
            )
        if scope is not None and (scope is not choice.scope or not choice.subscribed):
            outcome.changes.append(words("change.scope", topic=name, scope=words(f"scope.{scope}")))
    _preferences(session, current, form, actor=actor, words=words, outcome=outcome)
    return outcome


def _scope(
    given: Sequence[str] | None, choice: TopicChoice, *, words: Words, outcome: Outcome
) -> ClientScope | None:
    """Whose clients a ticked client topic is about: one of those offered, else the saved one,
    else `mine`. A value not offered (`all` from someone who may not, or a made-up one) is an
    error naming the field; None for every other topic."""
    if not choice.scopes:
        return None
    if not given or not given[0]:
        return choice.scope if choice.scope in choice.scopes else ClientScope.MINE
    if given[0] in {s.value for s in choice.scopes}:
        return ClientScope(given[0])
    why = "scope.not_all" if given[0] == ClientScope.ALL else "scope.bad"
    outcome.errors.append(words(why, topic=choice.topic.name))
    return None


def _row(session: Session, choice: TopicChoice, outcome: Outcome) -> Topic | None:
    """The topic's row, made now for a client topic nobody has subscribed to before."""
    if choice.made:
        return choice.topic
    try:
        return topics.get(session, choice.topic.key)
    except HubError as exc:  # made at the same moment by someone else: "retry"
        outcome.errors.append(exc.message)
        return None


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
