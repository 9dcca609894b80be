"""Following a signed personal link, and the unsubscribe it asks for: one code path for the
one-click POST of the self-service page and a mail to the unsubscribe mailbox, so both check
the token the same way, refuse a required topic the same way and write the same events.

It knows nothing of pages or mail: the self-service routes turn its answers into pages, the
inbound mail listener into SMTP replies and log lines.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.models import Contact, Topic
from hub.domain import SubscriptionStatus
from hub.preferences.tokens import ExpiredToken, InvalidToken, LinkSigner, Purpose
from hub.schemas.subscriptions import PreferencesPatch
from hub.services import contact_preferences, subscriptions
from hub.services.actor import Actor
from hub.settings import Settings

# The door an unsubscribe by mail comes through (the event's source), beside the page's
# "self-service" and "self-service.one-click".
BY_MAIL_SOURCE = "self-service.mailto"


class BadLink(enum.StrEnum):
    """Why a link opens nothing. Erased and swapped read as invalid: no answer may tell
    whether a contact exists."""

    EXPIRED = "expired"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Target:
    """Whom a link names, the topic it names (None: everything), and when it was issued."""

    contact: Contact
    topic: Topic | None
    issued_at: dt.datetime | None


class Done(enum.StrEnum):
    """What an unsubscribe did."""

    UNSUBSCRIBED = "unsubscribed"  # from the topic (or it already was)
    UNSUBSCRIBED_ALL = "unsubscribed_all"  # the link named no topic: from everything
    REQUIRED = "required"  # a required topic: refused, nothing changed


def signer(settings: Settings) -> LinkSigner:
    """The signer of every personal link: every configured secret, the links' lifetime."""
    return LinkSigner(settings.link_secrets(), max_age=dt.timedelta(days=settings.link_ttl_days))


def target(session: Session, links: LinkSigner, purpose: Purpose, token: str) -> Target | BadLink:
    """The contact and topic a token names, or why it names nobody: tampered, for another
    purpose, expired, or of a contact erased (or an id reused) since."""
    try:
        claims = links.verify(purpose, token)
    except ExpiredToken:
        return BadLink.EXPIRED
    except InvalidToken:
        return BadLink.INVALID
    contact = session.get(Contact, claims.contact_id)
    if contact is None or not claims.names(contact.link_key, contact.created_at):
        return BadLink.INVALID
    topic = session.scalar(select(Topic).where(Topic.key == claims.topic)) if claims.topic else None
    return Target(contact, topic, claims.issued_at)


def unsubscribe(session: Session, found: Target, actor: Actor) -> Done:
    """Unsubscribe the person from the link's topic, or from everything when it names none;
    a required topic is refused. Changes are flushed, not committed: the caller commits.
    Doing it twice changes nothing the second time."""
    contact, topic = found.contact, found.topic
    if topic is not None and topic.required:
        return Done.REQUIRED
    if topic is None:
        contact_preferences.patch(session, contact, PreferencesPatch(unsubscribed_all=True), actor)
        return Done.UNSUBSCRIBED_ALL
    current = subscriptions.find(session, contact, topic)
    if current is not None and current.status is not SubscriptionStatus.UNSUBSCRIBED:
        subscriptions.unsubscribe(session, contact, topic, actor)
    return Done.UNSUBSCRIBED
