"""Amazon SES events shaped like the examples in SES's documentation ("Amazon SES notification
contents" and "event publishing"), about a message Hub sent: its real Message-ID among
`mail.headers`, SES's own id in `mail.messageId` and, as SES does when sending through its SMTP
interface, its own Message-ID in `commonHeaders`."""

from __future__ import annotations

import datetime as dt
from typing import Any

SES_MESSAGE_ID = "0102019c2b8e9a4f-6f2a1b8e-6b1c-4c1e-9d8c-2a1f7a0e5c3b-000000"


def mail(*, message_id: str, source: str, to: str, headers: bool = True) -> dict[str, Any]:
    """The `mail` object of an event about Hub's message `message_id` to `to`."""
    sent = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    body: dict[str, Any] = {
        "timestamp": sent,
        "messageId": SES_MESSAGE_ID,
        "source": source,
        "sourceArn": "arn:aws:ses:eu-west-1:123456789012:identity/example.com",
        "sourceIp": "192.0.2.10",
        "sendingAccountId": "123456789012",
        "destination": [to],
        "headersTruncated": False,
        "commonHeaders": {
            "from": ["Hub <hub@example.com>"],
            "to": [to],
            "messageId": f"<{SES_MESSAGE_ID}@eu-west-1.amazonses.com>",
            "subject": "News",
        },
    }
    if headers:
        body["headers"] = [
            {"name": "Return-Path", "value": f"<{source}>"},
            {"name": "From", "value": "Hub <hub@example.com>"},
            {"name": "To", "value": to},
            {"name": "Subject", "value": "News"},
            {"name": "Message-ID", "value": message_id},
            {"name": "MIME-Version", "value": "1.0"},
        ]
    return body


def bounce(
    mail_object: dict[str, Any],
    *,
    bounce_type: str,
    sub_type: str,
    status: str | None,
    diagnostic: str | None,
    publishing: bool = False,
) -> dict[str, Any]:
    """A Bounce: SES's notification format, or the event-publishing one (`eventType`)."""
    recipient: dict[str, Any] = {"emailAddress": mail_object["destination"][0], "action": "failed"}
    if status is not None:
        recipient["status"] = status
    if diagnostic is not None:
        recipient["diagnosticCode"] = diagnostic
    detail = {
        "bounceType": bounce_type,
        "bounceSubType": sub_type,
        "bouncedRecipients": [recipient],
        "timestamp": mail_object["timestamp"],
        "feedbackId": "0102019c2b8ea1a2-bounce-000000",
        "remoteMtaIp": "198.51.100.25",
        "reportingMTA": "dsn; a8-50.smtp-out.amazonses.com",
    }
    kind = {"eventType": "Bounce"} if publishing else {"notificationType": "Bounce"}
    return kind | {"bounce": detail, "mail": mail_object}


def complaint(mail_object: dict[str, Any], *, feedback_type: str | None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "userAgent": "ExampleCorp Feedback Loop (V0.01)",
        "complainedRecipients": [{"emailAddress": mail_object["destination"][0]}],
        "timestamp": mail_object["timestamp"],
        "feedbackId": "0102019c2b8ea1a2-complaint-000000",
        "arrivalDate": mail_object["timestamp"],
    }
    if feedback_type is not None:
        detail["complaintFeedbackType"] = feedback_type
    return {"notificationType": "Complaint", "complaint": detail, "mail": mail_object}


def delivery(mail_object: dict[str, Any]) -> dict[str, Any]:
    detail = {
        "timestamp": mail_object["timestamp"],
        "processingTimeMillis": 546,
        "recipients": mail_object["destination"],
        "smtpResponse": "250 ok:  Message 64111812 accepted",
        "reportingMTA": "a8-70.smtp-out.amazonses.com",
        "remoteMtaIp": "198.51.100.25",
    }
    return {"eventType": "Delivery", "delivery": detail, "mail": mail_object}
