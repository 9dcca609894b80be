"""A campaign's test send: the message as the first person of its audience would get it, sent
to a staff member's address; and its outcome, read from its delivery row (what the API and
the console report instead of a hopeful "delivered"), with whose message it was.

The database is the truth of a delivery (DESIGN: Delivery), so the answer is read there: the
caller waits a bounded while for the row to reach a final or a clearly pending state, and a
page shown later reads the row again, so a reload shows what is true then.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from hub.campaigns import ab_plan
from hub.campaigns.words import campaign_words
from hub.db.models import Campaign, Contact, Delivery, Notification, Topic
from hub.dispatch import audience
from hub.dispatch.segment import with_bucket
from hub.domain import ActorKind, DeliveryState, NotificationState
from hub.schemas.campaigns import TestOutcome, TestSendOut
from hub.services import account_mail as mail
from hub.services import contacts
from hub.services.actor import Actor
from hub.services.errors import InvalidField
from hub.templates.isolation import RenderProcesses

TESTER = Actor(kind=ActorKind.SYSTEM, name="campaign-test", source="campaign.test")
WAIT_SECONDS = 10.0
POLL_SECONDS = 0.1
# "template: variants.ru.email_subject: the data has no 'x' (line 1)", as the composer words
# a part that failed to render ("variants.default." the default variant; before, "variants..").
_TEMPLATE_ERROR = re.compile(
    r"template: variants\.(?P<variant>[^.]*)\.(?P<part>\S+): (?P<why>.*?)"
    r"(?: \(line (?P<line>\d+)\))?",
    re.DOTALL,
)
# The source of a test notification: the campaign's, and the person it was rendered as.
_SOURCE = re.compile(r"campaign:(?P<campaign>\d+):test(?::as:\d+)?")  # ":as:" from before 0017
_OUTCOMES = {
    DeliveryState.SENT: TestOutcome.SENT,
    DeliveryState.DELIVERED: TestOutcome.DELIVERED,
    DeliveryState.FAILED: TestOutcome.FAILED,
    DeliveryState.BOUNCED: TestOutcome.FAILED,
    DeliveryState.UNKNOWN: TestOutcome.UNKNOWN,
    DeliveryState.SUPPRESSED: TestOutcome.REFUSED,
    DeliveryState.DEFERRED: TestOutcome.WAITING,
    DeliveryState.QUEUED: TestOutcome.PENDING,
    DeliveryState.SENDING: TestOutcome.PENDING,
}


def trial_source(campaign_id: int) -> str:
    """The `source` of a campaign's test notification: how a page knows one of them (whom
    it was rendered as is the notification's `render_as_id`)."""
    return f"campaign:{campaign_id}:test"


def tested_campaign(source: str | None) -> int | None:
    """The campaign a test notification's `source` belongs to; None for any other source."""
    found = _SOURCE.fullmatch(source or "")
    return int(found["campaign"]) if found else None


@dataclass(frozen=True)
class Failure:
    """A template failure, read back from a delivery's error: where, and why in words."""

    variant: str
    part: str
    line: int | None
    why: str


def outcome(session: Session, notification_id: int, *, waited: float | None = None) -> TestSendOut:
    """Where the test notification's (single) delivery is now; `waited`: the seconds the
    caller waited, said in a pending answer."""
    notification = session.get(Notification, notification_id)
    state = notification.state if notification else None
    delivery = session.scalars(
        select(Delivery).where(Delivery.notification_id == notification_id).order_by(Delivery.id)
    ).first()
    whose, rendered_for = _whose(session, notification, delivery)
    said = {"notification_id": notification_id, "whose": whose, "rendered_for": rendered_for}
    see = f"see notification {notification_id}"
    if delivery is None:
        if state is NotificationState.FANNED_OUT:  # nobody to send to: say so, not "sent"
            return TestSendOut(
                **said,
                outcome=TestOutcome.REFUSED,
                message=f"not sent: no delivery was made ({see})",
            )
        return _pending(said, "queued", waited)
    found = _OUTCOMES[delivery.state]
    address = delivery.address or "the address given"
    error = delivery.error or delivery.reason
    failure = template_failure(error) if error else None
    if found is TestOutcome.PENDING:
        return _pending(said, delivery.state.value, waited, delivery.state)
    if found is TestOutcome.SENT:
        if delivery.provider == "capture":
            message = "kept by the capture sink (sent): no mail server is configured"
        else:
            message = "accepted by the mail server (sent)"
    elif found is TestOutcome.DELIVERED:
        message = "delivered: the provider confirmed it"
    elif found is TestOutcome.FAILED:
        message = f"{delivery.state.value}: {readable(error or 'no reason recorded')}"
    elif found is TestOutcome.UNKNOWN:
        message = f"unknown: the server may or may not have it ({error or see})"
    elif found is TestOutcome.REFUSED:
        message = f"not sent to {address}: {error or 'refused'}"
    else:
        until = delivery.due_at.strftime("%Y-%m-%d %H:%M UTC") if delivery.due_at else "later"
        message = f"waiting until {until}: {error or 'deferred'}"
    return TestSendOut(
        **said,
        outcome=found,
        message=message,
        state=delivery.state,
        error=readable(error) if error else None,
        variant=failure.variant if failure else None,
        part=failure.part if failure else None,
        line=failure.line if failure else None,
    )


def _whose(
    session: Session, notification: Notification | None, delivery: Delivery | None
) -> tuple[str, str | None]:
    """ "the message Ada Lovelace (w-0001) would get, sent to mia@acme.example", and the
    external id of that person (None: the stand-in of an empty audience)."""
    to = delivery.address if delivery is not None else None
    if to is None and notification is not None and notification.recipients:
        to = session.scalar(select(Contact.email).where(Contact.id == notification.recipients[0]))
    sent_to = f"sent to {to or 'the address given'}"
    rendered_as = notification.render_as_id if notification is not None else None
    if rendered_as is None:
        stand_in = "nobody is in the audience: the message a stand-in with no attributes gets"
        return f"{stand_in}, {sent_to}", None
    person = session.execute(
        select(Contact.external_id, Contact.name).where(Contact.id == rendered_as)
    ).first()
    if person is None:
        return f"the message a person of the audience (erased since) would get, {sent_to}", None
    who = f"{person.name} ({person.external_id})" if person.name else person.external_id
    return f"the message {who} would get, {sent_to}", person.external_id


def _pending(
    said: dict[str, Any], how: str, waited: float | None, state: DeliveryState | None = None
) -> TestSendOut:
    after = f" after {waited:g} s" if waited else ""
    return TestSendOut(
        **said,
        outcome=TestOutcome.PENDING,
        message=f"still {how}{after}: see notification {said['notification_id']}",
        state=state,
    )


def template_failure(error: str) -> Failure | None:
    """A delivery's error as the template failure it is, or None for any other error."""
    found = _TEMPLATE_ERROR.fullmatch(error)
    if found is None:
        return None
    variant = "" if found["variant"] == "default" else found["variant"]
    line = int(found["line"]) if found["line"] else None
    return Failure(variant, found["part"], line, campaign_words(found["why"]))


def readable(error: str) -> str:
    """A template failure as a person reads it: "template: the campaign's data has no
    'discount' in email_subject (line 1)"; any other error as it is."""
    failure = template_failure(error)
    if failure is None:
        return error
    where = failure.part + (f" of the {failure.variant} variant" if failure.variant else "")
    line = f" (line {failure.line})" if failure.line else ""
    return f"template: {failure.why} in {where}{line}"


def test_send(
    session: Session,
    campaign: Campaign,
    *,
    email: str,
    name: str | None,
    processes: RenderProcesses,
    arm: str | None,
) -> int:
    """The campaign's message as the first person of its audience would get it (their name,
    language, time zone and attributes), sent to `email` on Hub's own `hub-account` topic;
    the notification's id (enqueue it after commit).

    The dry run renders for real people, so a test rendered for the staff member (who has no
    attributes) could fail where the dry run passed. The message goes to the stand-in contact
    `staff:<email>` (the staff member, nothing of the person copied onto it) and is rendered
    as the person (`render_as`, read when it is sent); with nobody in the audience it renders
    as the stand-in, with no attributes, and the answer says so (`trial.outcome`).
    """
    template, segment = _tested_arm(campaign, arm)
    person = first_of_audience(session, campaign, segment=segment)
    given: dict[str, Any] = {"kind": "employee", "email": email, "name": name or email}
    contacts.put(session, f"staff:{email}", given, TESTER, allow_private_webhooks=False)
    message = {"template": template, "data": campaign.data}
    rendered_as = person.id if person is not None else None
    source = trial_source(campaign.id)
    return mail.send(
        session,
        f"staff:{email}",
        message,
        processes=processes,
        source=source,
        render_as=rendered_as,
    )


def _tested_arm(campaign: Campaign, arm: str | None) -> tuple[str, dict[str, Any] | None]:
    """The template a test sends and the audience its person is taken from: the campaign's,
    or an A/B variant's (the first by default) and that variant's people.

    Raises:
        InvalidField: `arm` names no variant of the campaign.
    """
    if not campaign.variants or not campaign.ab:
        if arm is not None:
            raise InvalidField("arm", "the campaign has no variants")
        return campaign.template_key, campaign.segment
    arms = ab_plan.arms(campaign.variants, campaign.ab)
    chosen = next((a for a in arms if a.name == arm), None) if arm is not None else arms[0]
    if chosen is None:
        names = ", ".join(a.name for a in arms)
        raise InvalidField("arm", f"the campaign has no variant {arm!r} (it has {names})")
    bucketed = with_bucket(campaign.segment, seed=campaign.id, low=chosen.low, high=chosen.high)
    return chosen.template, bucketed


def first_of_audience(
    session: Session, campaign: Campaign, *, segment: dict[str, Any] | None = None
) -> Contact | None:
    """The first person (by id) the campaign's topic and segment (or `segment`) reach now."""
    topic = session.get_one(Topic, campaign.topic_id)
    narrowed = segment if segment is not None else campaign.segment
    ids = audience.next_ids(session, topic, named=None, after=0, limit=1, segment=narrowed)
    return session.get(Contact, ids[0]) if ids else None


def wait_for_outcome(
    reads: sessionmaker[Session],
    notification_id: int,
    *,
    seconds: float = WAIT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TestSendOut:
    """Poll the delivery until it is no longer queued or sending, or `seconds` have passed.
    Blocks its thread: call it from a worker thread, never on the event loop."""
    deadline = clock() + seconds
    while True:
        with reads() as session:
            found = outcome(session, notification_id, waited=seconds)
        if found.outcome is not TestOutcome.PENDING or clock() >= deadline:
            return found
        sleep(POLL_SECONDS)
