"""Bounces and complaints that a provider Hub relays through reports by webhook: Amazon SES
(through SNS) and SendGrid's event webhook, each signature-checked (issue 20, item 4).

No API key: the provider signs instead. Both providers retry on anything but 2xx, so a batch
is answered 200 with what became of each event once its signature holds; 403 (bad signature,
stale, not configured) and 422 (not the provider's format) name the header or field, and 503
(the certificate host or the database unreachable for now) asks for a retry.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from hub.api import errors
from hub.api.routes.bounces import RETRY_AFTER, DatabaseGuard
from hub.channels.email.reports import Kind
from hub.services.errors import InvalidField
from hub.services.esp_feedback import recording, sendgrid, ses, sns
from hub.services.esp_feedback.problems import FeedbackProblem, Malformed
from hub.services.esp_feedback.recording import Item, Outcome, Summary
from hub.services.esp_feedback.sns_client import SnsClient
from hub.web.deps import RuntimeDep, SessionDep

router = APIRouter(prefix="/inbound/email", tags=["inbound"])
log = logging.getLogger(__name__)


async def _raw_body(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


async def _sns_client(request: Request) -> SnsClient:
    """The app's SNS client, made on first use: it keeps the certificates it fetched."""
    client: SnsClient | None = getattr(request.app.state, "sns_client", None)
    if client is None:
        client = request.app.state.sns_client = SnsClient()
    return client


SnsClientDep = Annotated[SnsClient, Depends(_sns_client)]


class EventOut(BaseModel):
    """What became of one event."""

    outcome: Outcome = Field(
        description="`matched` (recorded on Hub's delivery to that address), `unmatched` "
        "(kept for staff, nothing changed), `ignored` (not mail coming back), `duplicate`, "
        "`invalid` (unreadable) or `failed` (could not be recorded: logged, and kept among "
        "the unmatched reports for staff)."
    )
    kind: Kind | None = Field(
        None,
        description="hard_bounce, soft_bounce, blocked, complaint or not_bounce; null when "
        "the event could not be read.",
    )
    delivery_id: int | None = Field(None, description="The delivery it was recorded on.")
    why: str | None = Field(None, description="Why it matched nothing, or was not read.")


class FeedbackOut(BaseModel):
    """What Hub made of a provider's request."""

    received: int = Field(description="Events in the request.")
    matched: int = Field(description="Events recorded on one of Hub's deliveries.")
    unmatched: int = Field(description="Bounces and complaints that named no delivery here.")
    ignored: int = Field(description="Events that are not mail coming back.")
    duplicates: int = Field(description="Events received before, not counted again.")
    invalid: int = Field(description="Events Hub could not read.")
    failed: int = Field(
        description="Events that could not be recorded (logged, and kept among the unmatched "
        "reports: GET /v1/bounces/unmatched)."
    )
    kinds: dict[str, int] = Field(description="How many events of each kind arrived.")
    events: list[EventOut] = Field(description="Each event's outcome, in the request's order.")
    note: str | None = Field(None, description="What was done besides, e.g. a subscription.")


def _answer(summary: Summary, note: str | None = None) -> FeedbackOut:
    return FeedbackOut(
        received=len(summary.results),
        matched=summary.count(Outcome.MATCHED),
        unmatched=summary.count(Outcome.UNMATCHED),
        ignored=summary.count(Outcome.IGNORED),
        duplicates=summary.count(Outcome.DUPLICATE),
        invalid=summary.count(Outcome.INVALID),
        failed=summary.count(Outcome.FAILED),
        kinds=summary.kinds,
        events=[_event_out(result) for result in summary.results],
        note=note,
    )


def _event_out(result: recording.Result) -> EventOut:
    return EventOut(
        outcome=result.outcome, kind=result.kind, delivery_id=result.delivery_id, why=result.why
    )


def _refused(exc: FeedbackProblem) -> HTTPException | InvalidField:
    if isinstance(exc, Malformed):  # the API's own answer to invalid input, naming the field
        return InvalidField(exc.field, exc.message)
    headers = {"Retry-After": RETRY_AFTER} if exc.status == 503 else None
    return HTTPException(exc.status, f"{exc.field}: {exc.message}", headers=headers)


ANSWERS: dict[int | str, dict[str, Any]] = {
    **errors.TOO_LARGE,
    403: errors.problem(
        "No valid provider signature, a stale one, another topic, or the feedback is not "
        "configured; nothing was changed"
    ),
    422: errors.problem("Not the provider's format; `details` names the field or header"),
    503: errors.problem(
        "The certificate host or the database is unavailable for now (Retry-After); the "
        "provider retries"
    ),
}


@router.post(
    "/ses",
    operation_id="inbound.ses_feedback",
    summary="Take Amazon SES bounces and complaints through SNS",
    response_model=FeedbackOut,
    responses=ANSWERS,
    dependencies=[DatabaseGuard],
    openapi_extra={
        "requestBody": {
            "required": True,
            # SNS posts JSON as text/plain; any content type is read as the raw envelope.
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def ses_feedback(
    raw: RawBody, request: Request, db: SessionDep, runtime: RuntimeDep, client: SnsClientDep
) -> Any:
    """An SNS HTTP/S subscription of a topic SES publishes bounce and complaint events to.

    The SNS signature (version 1 or 2) is checked with the certificate at SigningCertURL,
    which must match HUB_SNS_CERTIFICATE_URL_PATTERN; the topic must be one of
    HUB_SES_TOPIC_ARNS. A SubscriptionConfirmation is confirmed by fetching its SubscribeURL.
    A Notification's SES event is matched to Hub's delivery by the Message-ID (or VERP
    address) Hub gave it, and only when the recipient is that delivery's address: a hard
    bounce or a complaint suppresses the address before the next send.
    """
    settings = runtime.settings
    now = dt.datetime.now(dt.UTC)
    try:
        if not settings.ses_topic_arns:
            raise HTTPException(403, "SES feedback is not configured: set HUB_SES_TOPIC_ARNS")
        message = sns.read(raw, request.headers.get(sns.TYPE_HEADER))
        sns.check_origin(
            message,
            topics=settings.ses_topic_arns,
            certificate_url_pattern=settings.sns_certificate_url_pattern,
            now=now,
        )
        sns.verify(message, client.public_key(message.signing_cert_url, now=now))
        if message.type is sns.MessageType.SUBSCRIPTION_CONFIRMATION:
            client.confirm(message.subscribe_url or "")
            log.info("SNS subscription to %s confirmed", message.topic_arn)
            return _answer(Summary(), f"subscription to {message.topic_arn} confirmed")
        if message.type is sns.MessageType.UNSUBSCRIBE_CONFIRMATION:
            log.warning("SNS unsubscribed Hub from %s", message.topic_arn)
            return _answer(Summary(), f"unsubscribed from {message.topic_arn}; noted")
        item = Item(ses.report(sns.event(message)), receipt=f"ses:{message.message_id}"[:64])
    except FeedbackProblem as exc:
        raise _refused(exc) from None
    summary = recording.record_all(db, [item], hasher=runtime.hasher, keys=runtime.message_keys)
    db.commit()  # a database that is down is 503 (DatabaseGuard): SNS retries
    return _answer(summary)


@router.post(
    "/sendgrid",
    operation_id="inbound.sendgrid_feedback",
    summary="Take SendGrid's signed event webhook",
    response_model=FeedbackOut,
    responses=ANSWERS,
    dependencies=[DatabaseGuard],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}
            },
        }
    },
)
def sendgrid_feedback(raw: RawBody, request: Request, db: SessionDep, runtime: RuntimeDep) -> Any:
    """A batch of SendGrid events, signed with the key of its Signed Event Webhook.

    The signature (X-Twilio-Email-Event-Webhook-Signature over the timestamp header and the
    body) is checked with HUB_SENDGRID_WEBHOOK_PUBLIC_KEY; a timestamp over 10 minutes old is
    refused. `bounce` events are hard, soft or blocked by their status; `spamreport` is a
    complaint; `deferred`, `dropped`, `delivered`, `open`, `click` and the rest are ignored.
    Each event is recorded on its own: one that cannot be read or recorded loses none of the
    others.
    """
    now = dt.datetime.now(dt.UTC)
    try:
        key = sendgrid.public_key(runtime.settings.sendgrid_webhook_public_key)
        sendgrid.verify(
            raw,
            signature=request.headers.get(sendgrid.SIGNATURE_HEADER),
            timestamp=request.headers.get(sendgrid.TIMESTAMP_HEADER),
            key=key,
            now=now,
        )
        batch = sendgrid.events(raw)
    except FeedbackProblem as exc:
        raise _refused(exc) from None
    items = [_sendgrid_item(event) for event in batch]
    summary = recording.record_all(db, items, hasher=runtime.hasher, keys=runtime.message_keys)
    db.commit()  # a database that is down is 503 (DatabaseGuard): SendGrid retries
    return _answer(summary)


def _sendgrid_item(event: Any) -> Item:
    try:
        return Item(sendgrid.report(event), receipt=sendgrid.receipt_id(event))
    except sendgrid.BadEvent as exc:
        return Item(None, problem=str(exc))
