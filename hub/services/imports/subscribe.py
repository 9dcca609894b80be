"""The import's "subscribe every imported person to topic T on channels C" option.

Each person of a batch is subscribed through `subscriptions.put`, the service behind
`PUT /v1/contacts/{id}/subscriptions/{topic}`, so its rules hold (the topic's audience and
allowed channels, a person's own recent unsubscribe standing for the cool-down), and each
subscription is a consent event on the person's timeline with the import's consent source and
note. Before that, the channels are narrowed to those the person has an address for that is not
suppressed: an import cannot give consent over a STOP, a complaint or a hard bounce. A person
left with no channel, or refused by the service, is a failed row with the reason; their contact
fields are still imported.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Contact, Suppression, Topic
from hub.domain import ADDRESS_FIELD, Channel
from hub.schemas.subscriptions import SubscriptionIn
from hub.services import subscriptions
from hub.services.actor import SELF_SERVICE_SOURCE, Actor
from hub.services.errors import HubError, InvalidField
from hub.services.hashing import AddressHasher

# The names the API's query, the console's form and the CLI's options give the option's parts.
TOPIC_FIELD = "subscribe_topic"
CHANNELS_FIELD = "subscribe_channels"
SOURCE_FIELD = "consent_source"
NOTE_FIELD = "consent_note"
ROW_FIELD = "subscription"  # a failed row's field when its subscription was refused
MAX_SOURCE = 64  # subscriptions.consent_source and contact_events.source
MAX_NOTE = 255  # contact_events.reason
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_ADDRESS_NAMES = {"email": "e-mail address", "phone": "phone number", "webhook_url": "webhook URL"}


@dataclass(frozen=True, slots=True)
class SubscribeTo:
    """Subscribe every imported person to `topic`. `channels` in order of preference; empty:
    the topic's default channels. The consent source and note go on each consent event."""

    topic: str
    channels: tuple[Channel, ...]
    consent_source: str
    note: str | None = None

    def options(self) -> dict[str, Any]:
        """As an import job keeps it."""
        return {
            "topic": self.topic,
            "channels": [c.value for c in self.channels],
            "consent_source": self.consent_source,
            "note": self.note,
        }


def checked(
    session: Session,
    *,
    topic: str | None,
    channels: Sequence[Channel],
    consent_source: str | None,
    note: str | None,
) -> SubscribeTo | None:
    """The option as asked for, checked before any row is read; None when no topic is named.

    Raises:
        InvalidField: naming `subscribe_topic`, `subscribe_channels[i]`, `consent_source` or
            `consent_note`.
    """
    topic = (topic or "").strip()
    source = (consent_source or "").strip()
    note = (note or "").strip() or None
    if not topic:
        if channels:
            raise InvalidField(CHANNELS_FIELD, f"name the topic to subscribe to ({TOPIC_FIELD})")
        if source or note:
            raise InvalidField(
                SOURCE_FIELD if source else NOTE_FIELD,
                f"is only used when subscribing people to a topic ({TOPIC_FIELD})",
            )
        return None
    found = session.scalar(select(Topic).where(Topic.key == topic))
    if found is None:
        raise InvalidField(TOPIC_FIELD, f"there is no topic {topic!r}")
    if len(set(channels)) != len(channels):
        raise InvalidField(CHANNELS_FIELD, "lists a channel twice")
    for index, channel in enumerate(channels):
        if channel.value not in found.allowed_channels:
            raise InvalidField(
                f"{CHANNELS_FIELD}[{index}]",
                f"topic {topic!r} does not allow {channel.value} "
                f"(allowed: {', '.join(found.allowed_channels)})",
            )
    _check_source(source)
    if note is not None:
        _check_text(NOTE_FIELD, note, MAX_NOTE)
    return SubscribeTo(topic, tuple(channels), source, note)


def _check_source(source: str) -> None:
    if not source:
        raise InvalidField(
            SOURCE_FIELD,
            "say where these people agreed to hear from you (for example spring-webinar): "
            "it is kept as the evidence of their consent",
        )
    _check_text(SOURCE_FIELD, source, MAX_SOURCE)
    # A self-service source is what lets a person's own unsubscribe stand against others'
    # re-subscription (the cool-down): an import must not be able to claim it.
    if source.lower().startswith(SELF_SERVICE_SOURCE):
        raise InvalidField(SOURCE_FIELD, f"must not start with {SELF_SERVICE_SOURCE!r}")


def _check_text(field: str, value: str, limit: int) -> None:
    if len(value) > limit:
        raise InvalidField(field, f"is {len(value)} characters long; at most {limit}")
    if _CONTROL.search(value):
        raise InvalidField(field, "must not contain control characters or line breaks")


class Subscriber:
    """Subscribes the people of each written batch, in the batch's transaction."""

    def __init__(
        self,
        option: SubscribeTo,
        *,
        actor: Actor,
        hasher: AddressHasher,
        cool_down: dt.timedelta,
    ) -> None:
        self.option = option
        # The event's source is the consent's: where the person agreed, not the door of the file.
        self._actor = actor.via(option.consent_source)
        self._hasher = hasher
        self._cool_down = cool_down

    def subscribe(
        self, session: Session, rows: Sequence[tuple[int, int]]
    ) -> tuple[int, list[tuple[int, str, str]]]:
        """Subscribe each (line, contact id); return how many are subscribed and the
        problems (line, field, reason) of the rows refused."""
        topic = session.scalar(select(Topic).where(Topic.key == self.option.topic))
        if topic is None:  # renamed or gone since the import was checked
            return 0, [(line, ROW_FIELD, f"no topic {self.option.topic!r}") for line, _ in rows]
        ids = {contact_id for _, contact_id in rows}
        people = {c.id: c for c in session.scalars(select(Contact).where(Contact.id.in_(ids)))}
        wanted = [Channel(c) for c in self.option.channels or topic.default_channels]
        suppressed = self._suppressed(session, people.values(), wanted)
        subscribed = 0
        problems: list[tuple[int, str, str]] = []
        for line, contact_id in rows:
            contact = people[contact_id]
            usable, why_not = _usable(contact, wanted, suppressed)
            if not usable:
                problems.append((line, ROW_FIELD, f"not subscribed to {topic.key}: {why_not}"))
                continue
            try:
                subscriptions.put(
                    session,
                    contact,
                    topic,
                    SubscriptionIn(channels=usable),
                    self._actor,
                    cool_down=self._cool_down,
                    note=self.option.note,
                )
            except HubError as exc:
                problems.append((line, ROW_FIELD, f"not subscribed to {topic.key}: {exc.message}"))
                continue
            subscribed += 1
        return subscribed, problems

    def _suppressed(
        self, session: Session, people: Any, channels: list[Channel]
    ) -> set[tuple[Channel, str]]:
        """(channel, address) pairs on the suppression list now, among these people's."""
        wanted: dict[tuple[Channel, str], tuple[Channel, str]] = {}
        for contact in people:
            for channel in channels:
                address = getattr(contact, ADDRESS_FIELD[channel])
                if address:
                    wanted[(channel, self._hasher(channel, address))] = (channel, address)
        if not wanted:
            return set()
        found = session.execute(
            select(Suppression.channel, Suppression.address_hash).where(
                Suppression.address_hash.in_({digest for _, digest in wanted}),
                or_(Suppression.expires_at.is_(None), Suppression.expires_at > utcnow()),
            )
        )
        return {wanted[key] for key in map(tuple, found) if key in wanted}


def _usable(
    contact: Contact, wanted: list[Channel], suppressed: set[tuple[Channel, str]]
) -> tuple[list[Channel], str]:
    """The wanted channels this person can be reached on, and if none, why."""
    usable: list[Channel] = []
    reasons: list[str] = []
    for channel in wanted:
        field = ADDRESS_FIELD[channel]
        address = getattr(contact, field)
        if not address:
            reasons.append(f"no {_ADDRESS_NAMES.get(field, field)} for {channel.value}")
        elif (channel, address) in suppressed:
            reasons.append(f"{channel.value} to {address} is suppressed")
        else:
            usable.append(channel)
    return usable, "; ".join(reasons)
