"""Amazon SNS messages posted to an HTTP/S subscription, read and checked without a network:
the envelope's fields, the string SNS signs, its RSA signature, where the certificate may come
from, which topics Hub listens to, and how old a message may be.

SNS signs `Name\\nValue\\n` for a fixed list of fields per message type, in that order
(SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA), with the key of the certificate at
SigningCertURL. That URL is trusted only when it matches HUB_SNS_CERTIFICATE_URL_PATTERN
(https://sns.<region>.amazonaws.com/SimpleNotificationService-<hash>.pem), and it is checked
before anything is fetched.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import enum
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from hub.services.esp_feedback.problems import Malformed, Refused

TYPE_HEADER = "x-amz-sns-message-type"
# SNS retries an HTTP/S endpoint for at most an hour (a hard limit of its delivery policies);
# a message older than this, however well signed, is a replay.
MAX_AGE = dt.timedelta(hours=2)
MAX_AHEAD = dt.timedelta(minutes=5)  # clocks differ a little


class MessageType(enum.StrEnum):
    NOTIFICATION = "Notification"
    SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
    UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"


# The fields SNS signs, in the order it signs them (Subject only when the message has one).
_SUBSCRIPTION = ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
SIGNED_FIELDS: dict[MessageType, tuple[str, ...]] = {
    MessageType.NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    MessageType.SUBSCRIPTION_CONFIRMATION: _SUBSCRIPTION,
    MessageType.UNSUBSCRIBE_CONFIRMATION: _SUBSCRIPTION,
}
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}


@dataclass(frozen=True, slots=True)
class SnsMessage:
    type: MessageType
    fields: Mapping[str, str]  # every string field of the envelope, as posted
    timestamp: dt.datetime
    signature: bytes
    signature_version: str
    signing_cert_url: str

    @property
    def message_id(self) -> str:
        return self.fields["MessageId"]

    @property
    def topic_arn(self) -> str:
        return self.fields["TopicArn"]

    @property
    def message(self) -> str:
        return self.fields["Message"]

    @property
    def subscribe_url(self) -> str | None:
        return self.fields.get("SubscribeURL")


def read(raw: bytes, header_type: str | None) -> SnsMessage:
    """The envelope SNS posted. Raises Malformed naming the field or header at fault."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Malformed("body", "is not an SNS message (JSON)") from None
    if not isinstance(body, dict):
        raise Malformed("body", "is not an SNS message (a JSON object)")
    kind = body.get("Type")
    try:
        message_type = MessageType(str(kind))
    except ValueError:
        expected = ", ".join(MessageType)
        raise Malformed("Type", f"must be one of {expected}, not {kind!r}") from None
    if header_type is None:
        raise Malformed(TYPE_HEADER, "header is missing")
    if header_type != message_type:
        raise Malformed(TYPE_HEADER, f"header says {header_type!r}, the body {kind!r}")
    fields = {k: v for k, v in body.items() if isinstance(v, str)}
    required = {*SIGNED_FIELDS[message_type], "Signature", "SignatureVersion", "SigningCertURL"}
    for name in sorted(required - {"Subject"}):
        if not fields.get(name):
            raise Malformed(name, "is missing")
    if "Subject" in body and body["Subject"] is not None and "Subject" not in fields:
        raise Malformed("Subject", "must be a string")
    try:
        signature = base64.b64decode(fields["Signature"], validate=True)
    except (binascii.Error, ValueError):
        raise Malformed("Signature", "is not base64") from None
    return SnsMessage(
        type=message_type,
        fields=fields,
        timestamp=_timestamp(fields["Timestamp"]),
        signature=signature,
        signature_version=fields["SignatureVersion"],
        signing_cert_url=fields["SigningCertURL"],
    )


def _timestamp(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise Malformed("Timestamp", "is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise Malformed("Timestamp", "has no time zone (SNS writes UTC, ending in Z)")
    return moment.astimezone(dt.UTC)


def canonical(message: SnsMessage) -> bytes:
    """The bytes SNS signed: `Name\\nValue\\n` for each signed field present, in order."""
    text = ""
    for name in SIGNED_FIELDS[message.type]:
        value = message.fields.get(name)
        if value is None:  # only Subject may be absent (read() required the others)
            continue
        text += f"{name}\n{value}\n"
    return text.encode()


def check_origin(
    message: SnsMessage,
    *,
    topics: Collection[str],
    certificate_url_pattern: str,
    now: dt.datetime,
) -> None:
    """Everything that can be refused before a certificate is fetched. Raises Refused."""
    if not topics:
        raise Refused("TopicArn", "SES feedback is not configured: set HUB_SES_TOPIC_ARNS")
    if message.topic_arn not in topics:
        raise Refused("TopicArn", "is not one of HUB_SES_TOPIC_ARNS")
    if message.signature_version not in _HASHES:
        raise Refused("SignatureVersion", "must be 1 or 2")
    if not re.fullmatch(certificate_url_pattern, message.signing_cert_url):
        raise Refused("SigningCertURL", "is not an SNS certificate URL (see the URL pattern)")
    if message.timestamp < now - MAX_AGE:
        raise Refused("Timestamp", f"is more than {_hours(MAX_AGE)} old: a replay")
    if message.timestamp > now + MAX_AHEAD:
        raise Refused("Timestamp", "is in the future")
    subscribe = message.subscribe_url
    if subscribe is not None and _origin(subscribe) != _origin(message.signing_cert_url):
        raise Refused("SubscribeURL", "is not on the host that signed the message")


def _hours(span: dt.timedelta) -> str:
    hours = span.total_seconds() / 3600
    return f"{hours:g} hour" + ("" if hours == 1 else "s")


def _origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def verify(message: SnsMessage, key: rsa.RSAPublicKey) -> None:
    """Raises Refused unless `key` signed the message's canonical string."""
    algorithm = _HASHES[message.signature_version]()
    try:
        key.verify(message.signature, canonical(message), padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise Refused("Signature", "does not match the message and the SNS certificate") from None


def event(message: SnsMessage) -> dict[str, Any]:
    """The JSON a notification carries in `Message` (an SES event, for SES topics)."""
    try:
        body = json.loads(message.message)
    except (ValueError, RecursionError):
        raise Malformed("Message", "is not JSON") from None
    if not isinstance(body, dict):
        raise Malformed("Message", "is not a JSON object")
    return body
