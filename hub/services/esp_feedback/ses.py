"""Amazon SES events, as an SNS notification's `Message` carries them, read into Hub's report.

Two formats reach a topic: SES's own bounce and complaint notifications (`notificationType`)
and event publishing through a configuration set (`eventType`); both put the original message
in `mail` and the details under `bounce`, `complaint` and so on. The Message-ID Hub wrote is
looked for in `mail.headers` (when SES was told to include them) and `mail.commonHeaders`:
`mail.messageId` is SES's own id, which Hub never issued. The envelope sender
(`mail.source`, or the Return-Path) is Hub's VERP address when HUB_EMAIL_BOUNCE_ADDRESS is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

from hub.channels.email.bounce_class import NOT_COMPLAINTS
from hub.channels.email.reports import Kind, Report, Verdict
from hub.services import message_keys
from hub.services.esp_feedback import statuses
from hub.services.esp_feedback.fields import objects, text
from hub.services.esp_feedback.problems import Malformed

# SES's own words (bounceSubType), apart from the DSN classifier's patterns. A Permanent bounce
# of these says the address is wrong or already known bad: SES suppresses it, and so does Hub.
_NO_MAILBOX_SUBTYPES = {"NoEmail", "Suppressed", "OnAccountSuppressionList"}
# These refuse the message, not the person (RELIABILITY 26).
_CONTENT_SUBTYPES = {"ContentRejected", "AttachmentRejected"}
# These are about this message's size or the mailbox's room: soft, whatever the bounceType.
_SOFT_SUBTYPES = {"MailboxFull", "MessageTooLarge"}


def report(event: Mapping[str, Any]) -> Report:
    """What the event says of each recipient. Raises Malformed("Message", ...) when it is not
    an SES event."""
    kind = event.get("notificationType") or event.get("eventType")
    if not isinstance(kind, str):
        raise Malformed("Message", "is not an SES event (no notificationType or eventType)")
    mail = event.get("mail")
    if not isinstance(mail, dict):
        raise Malformed("Message", "is not an SES event (no mail object)")
    if kind == "Bounce":
        verdicts = _bounce(_object(event, "bounce"))
    elif kind == "Complaint":
        verdicts = _complaint(_object(event, "complaint"))
    else:  # Delivery, DeliveryDelay, Send, Open, Click, Reject, Rendering Failure, ...
        verdicts = tuple(
            Verdict(address, Kind.NOT_BOUNCE, None, kind, None)
            for address in _addresses(mail.get("destination"))
        )
    return Report(
        message_id=_message_id(mail),
        returned_to=_returned_to(mail),
        verdicts=verdicts or (Verdict(None, Kind.NOT_BOUNCE, None, kind, None),),
        source="ses",
    )


def _object(event: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = event.get(name)
    if not isinstance(value, dict):
        raise Malformed("Message", f"is an SES {name} event without its {name!r} object")
    return value


def _bounce(bounce: Mapping[str, Any]) -> tuple[Verdict, ...]:
    kind_word = str(bounce.get("bounceType") or "Undetermined")
    sub = str(bounce.get("bounceSubType") or "General")
    found = []
    for recipient in objects(bounce.get("bouncedRecipients")):
        status = text(recipient.get("status"))
        diagnostic = text(recipient.get("diagnosticCode"))
        found.append(
            Verdict(
                _address(recipient.get("emailAddress")),
                _bounce_kind(kind_word, sub, status, diagnostic),
                statuses.best_status(status, diagnostic),
                diagnostic or f"SES {kind_word}/{sub} bounce",
                (text(recipient.get("action")) or "failed").lower(),
            )
        )
    return tuple(found)


def _bounce_kind(bounce_type: str, sub: str, status: str | None, diagnostic: str | None) -> Kind:
    """SES's own words first where they are definite, the receiver's status and words where
    SES says only "General" (it files spam blocks and unknown users alike as
    Permanent/General)."""
    if sub in _CONTENT_SUBTYPES:
        return Kind.BLOCKED
    if sub in _SOFT_SUBTYPES:
        return Kind.SOFT_BOUNCE
    if bounce_type == "Permanent" and sub in _NO_MAILBOX_SUBTYPES:
        return Kind.HARD_BOUNCE
    found = statuses.kind_of(status, diagnostic, gave_up=True)
    if bounce_type == "Permanent":
        # With no code or words that say otherwise, SES's "Permanent" stands: SES itself
        # will not send to the address again (its suppression list).
        return found if statuses.has_clue(status, diagnostic) else Kind.HARD_BOUNCE
    # Transient (SES gave up after retrying) and Undetermined: failed, never hard on SES's
    # word alone, though the receiver's own 5.1.1 still says the mailbox does not exist.
    return found if found in (Kind.HARD_BOUNCE, Kind.BLOCKED) else Kind.SOFT_BOUNCE


def _complaint(complaint: Mapping[str, Any]) -> tuple[Verdict, ...]:
    feedback = text(complaint.get("complaintFeedbackType"))
    kind = Kind.NOT_BOUNCE if (feedback or "").lower() in NOT_COMPLAINTS else Kind.COMPLAINT
    detail = feedback or text(complaint.get("complaintSubType")) or "abuse"
    return tuple(
        Verdict(_address(r.get("emailAddress")), kind, None, detail, None)
        for r in objects(complaint.get("complainedRecipients"))
    )


def _message_id(mail: Mapping[str, Any]) -> str | None:
    """The Message-ID Hub wrote: the one with Hub's key in it, among the headers SES quotes."""
    found: list[str] = []
    for header in objects(mail.get("headers")):
        if str(header.get("name", "")).lower() == "message-id" and text(header.get("value")):
            found.append(str(header["value"]).strip())
    common = mail.get("commonHeaders")
    if isinstance(common, dict) and text(common.get("messageId")):
        found.append(str(common["messageId"]).strip())
    for value in found:
        if message_keys.find(value) is not None:
            return value
    return found[0] if found else None


def _returned_to(mail: Mapping[str, Any]) -> tuple[str, ...]:
    values = [text(mail.get("source"))]
    for header in objects(mail.get("headers")):
        if str(header.get("name", "")).lower() == "return-path":
            values.append(text(header.get("value")))
    cleaned = (parseaddr(v)[1] or v for v in values if v)
    return tuple(dict.fromkeys(v for v in cleaned if v))


def _addresses(value: Any) -> tuple[str | None, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(_address(item) for item in value if isinstance(item, str))


def _address(value: Any) -> str | None:
    """`Name <a@b>` and `a@b` alike, lower case; None when it is no address."""
    if not isinstance(value, str):
        return None
    address = parseaddr(value)[1] or value.strip()
    return address.lower() if "@" in address else None
