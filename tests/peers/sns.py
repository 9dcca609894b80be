"""An SNS stand-in on 127.0.0.1: a signing certificate made here (RSA, self-signed) served over
real HTTP as sns.<region>.amazonaws.com serves its own, messages signed the way AWS documents
(SignatureVersion 1: SHA1withRSA, 2: SHA256withRSA, over `Name\\nValue\\n` of the signed
fields in order), and the ConfirmSubscription endpoint a SubscribeURL points at.

The string to sign is written out here from AWS's documentation, apart from Hub's own code,
so a test of Hub's check is not Hub checked against itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

TOPIC = "arn:aws:sns:eu-west-1:123456789012:hub-ses-feedback"
CERT_PATH = "/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
PATTERN_TAIL = r"/SimpleNotificationService-[0-9a-f]+\.pem"

NOTIFICATION_FIELDS = ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
SUBSCRIPTION_FIELDS = (
    "Message",
    "MessageId",
    "SubscribeURL",
    "Timestamp",
    "Token",
    "TopicArn",
    "Type",
)


def certificate(
    key: rsa.RSAPrivateKey, common_name: str | None = "sns.amazonaws.com", *, days: int = 30
) -> bytes:
    """A self-signed PEM certificate for `key` issued to `common_name` (SNS's are issued to
    sns.amazonaws.com in every region), valid from yesterday for `days`."""
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Amazon.com, Inc."))
    name = x509.Name(attributes)
    now = dt.datetime.now(dt.UTC)
    built = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return built.public_bytes(serialization.Encoding.PEM)


@dataclass
class SnsSigner:
    """Signs SNS envelopes with a key whose certificate is served at `certificate_url`."""

    certificate_url: str
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def sign(self, envelope: dict[str, Any], version: str = "1") -> dict[str, Any]:
        """`envelope` with SignatureVersion, SigningCertURL and Signature added."""
        signed = NOTIFICATION_FIELDS if envelope["Type"] == "Notification" else SUBSCRIPTION_FIELDS
        text = "".join(f"{name}\n{envelope[name]}\n" for name in signed if name in envelope)
        algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
        signature = self.key.sign(text.encode(), padding.PKCS1v15(), algorithm)
        return envelope | {
            "SignatureVersion": version,
            "SigningCertURL": self.certificate_url,
            "Signature": base64.b64encode(signature).decode(),
        }

    def notification(
        self,
        message: dict[str, Any] | str,
        *,
        topic: str = TOPIC,
        version: str = "1",
        subject: str | None = "Amazon SES Email Event Notification",
        at: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """A signed Notification carrying `message` (an SES event, as JSON text)."""
        envelope: dict[str, Any] = {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Message": message if isinstance(message, str) else json.dumps(message),
            "Timestamp": _iso(at),
            "UnsubscribeURL": f"{_origin(self.certificate_url)}/?Action=Unsubscribe",
        }
        if subject is not None:
            envelope["Subject"] = subject
        return self.sign(envelope, version)

    def subscription(
        self,
        *,
        topic: str = TOPIC,
        version: str = "1",
        subscribe_origin: str | None = None,
        kind: str = "SubscriptionConfirmation",
    ) -> dict[str, Any]:
        """A signed SubscriptionConfirmation (or UnsubscribeConfirmation) for `topic`."""
        token = uuid.uuid4().hex * 2
        origin = subscribe_origin or _origin(self.certificate_url)
        envelope = {
            "Type": kind,
            "MessageId": str(uuid.uuid4()),
            "Token": token,
            "TopicArn": topic,
            "Message": f"You have chosen to subscribe to the topic {topic}.\n"
            "To confirm the subscription, visit the SubscribeURL included in this message.",
            "SubscribeURL": f"{origin}/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}",
            "Timestamp": _iso(None),
        }
        return self.sign(envelope, version)


def _iso(at: dt.datetime | None) -> str:
    moment = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class SnsHost:
    """What the HTTP server was asked: every request's path and query, in order."""

    url: str
    pem: bytes
    requests: list[str] = field(default_factory=list)
    confirmed: list[str] = field(default_factory=list)  # tokens of confirmed subscriptions

    @property
    def certificate_url(self) -> str:
        return self.url + CERT_PATH

    @property
    def pattern(self) -> str:
        """An HUB_SNS_CERTIFICATE_URL_PATTERN that accepts this host only."""
        return self.url.replace(".", r"\.") + PATTERN_TAIL


@contextmanager
def sns_host(pem: bytes = b"") -> Iterator[SnsHost]:
    """A real HTTP server on 127.0.0.1 serving `pem` at CERT_PATH and confirming
    subscriptions; `host.pem` may be replaced while it runs."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    host = SnsHost(url=f"http://127.0.0.1:{server.server_address[1]}", pem=pem)
    server.host = host  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield host
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        host: SnsHost = self.server.host  # type: ignore[attr-defined]
        host.requests.append(self.path)
        parts = urlsplit(self.path)
        if parts.path == CERT_PATH:
            self._answer(200, host.pem, "application/x-x509-ca-cert")
            return
        query = parse_qs(parts.query)
        if query.get("Action") == ["ConfirmSubscription"]:
            host.confirmed.extend(query.get("Token", []))
            arn = query.get("TopicArn", [""])[0]
            body = (
                "<ConfirmSubscriptionResponse><ConfirmSubscriptionResult><SubscriptionArn>"
                f"{arn}:{uuid.uuid4()}</SubscriptionArn></ConfirmSubscriptionResult>"
                "</ConfirmSubscriptionResponse>"
            )
            self._answer(200, body.encode(), "text/xml")
            return
        self._answer(404, b"not found", "text/plain")

    def _answer(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return
