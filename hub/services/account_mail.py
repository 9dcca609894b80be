"""Messages the pages send: a fresh preferences link, and a double opt-in confirmation.

They go out like any notification, on Hub's own required topic `hub-account` (e-mail only,
hidden from the preferences page), so they are logged on the timeline, retried, and still
refused to a suppressed address.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from hub.db.base import utcnow
from hub.db.models import Contact, Topic
from hub.domain import Audience, Channel, TopicCategory
from hub.schemas.notifications import NotificationIn
from hub.services import notifications
from hub.templates.isolation import RenderProcesses

# The self-service pages' phrases in the person's language: words(key, **values) -> text.
Phrases = Callable[..., str]

ACCOUNT_TOPIC = "hub-account"
SOURCE = "self-service"


def account_topic(session: Session) -> Topic:
    topic = session.scalar(select(Topic).where(Topic.key == ACCOUNT_TOPIC))
    if topic is None:
        now = utcnow()
        topic = Topic(
            key=ACCOUNT_TOPIC,
            name="Account messages",
            description="Links and confirmations people ask for on the self-service pages.",
            audience=Audience.ALL,
            allowed_channels=[Channel.EMAIL.value],
            default_channels=[Channel.EMAIL.value],
            allowed_frequencies=["immediate"],
            public=False,
            required=True,
            category=TopicCategory.TRANSACTIONAL,
            bypass_quiet_hours=True,
            created_at=now,
            updated_at=now,
        )
        session.add(topic)
        session.flush()
    return topic


def link(
    session: Session,
    contact: Contact,
    url: str,
    words: Phrases,
    *,
    processes: RenderProcesses,
    company: str,
    days: int,
) -> int:
    """Queue an e-mail with the preferences link; the notification's id (enqueue it after
    the commit)."""
    return _send(
        session,
        contact,
        subject=words("mail.link.subject", company="{{ data.company }}"),
        text=words("mail.link.text", company="{{ data.company }}", days=days),
        data={"link": url, "company": company},
        processes=processes,
    )


def confirmation(
    session: Session,
    contact: Contact,
    topic: Topic,
    url: str,
    words: Phrases,
    *,
    processes: RenderProcesses,
    company: str,
) -> int:
    return _send(
        session,
        contact,
        subject=words("mail.confirm.subject", topic="{{ data.topic }}"),
        text=words("mail.confirm.text", topic="{{ data.topic }}", company="{{ data.company }}"),
        data={"link": url, "topic": topic.name, "company": company},
        processes=processes,
    )


def _send(
    session: Session,
    contact: Contact,
    *,
    subject: str,
    text: str,
    data: dict[str, str],
    processes: RenderProcesses,
) -> int:
    content = {"": {"email_subject": subject, "email_text": text}}
    return send(
        session, contact.external_id, {"content": content, "data": data}, processes=processes
    )


def send(
    session: Session,
    external_id: str,
    message: dict[str, Any],
    *,
    processes: RenderProcesses,
    source: str = SOURCE,
    render_as: int | None = None,
) -> int:
    """Queue one e-mail on `hub-account` to one contact: `message` holds `content` or
    `template`, and `data`. The notification's id; enqueue it after the commit."""
    account_topic(session)
    body = NotificationIn.model_validate(
        {
            "topic": ACCOUNT_TOPIC,
            "recipients": [external_id],
            "channels": [Channel.EMAIL.value],
        }
        | message
    )
    accepted = notifications.accept(
        session, body, source=source, processes=processes, render_as=render_as
    )
    return accepted.id
