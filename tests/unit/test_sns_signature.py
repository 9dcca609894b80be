"""SNS messages are believed only when signed with the key of a certificate from an SNS URL,
for a configured topic, lately: the checks of `hub.services.esp_feedback.sns`, without HTTP;
and the certificate fetcher (`sns_client`) over httpx's MockTransport."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from hub.services.esp_feedback import sns
from hub.services.esp_feedback.problems import Malformed, Refused, Unavailable
from hub.services.esp_feedback.sns_client import FAILED_FOR, SnsClient
from hub.settings import Settings
from tests.peers.sns import TOPIC, SnsSigner, certificate

AWS_CERT = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
DEFAULT_PATTERN: str = Settings.model_fields["sns_certificate_url_pattern"].default
NOW = dt.datetime(2026, 12, 7, 2, 0, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def signer() -> SnsSigner:
    return SnsSigner(AWS_CERT)


def posted(envelope: dict[str, Any], header: str | None = "default") -> sns.SnsMessage:
    kind = envelope["Type"] if header == "default" else header
    return sns.read(json.dumps(envelope).encode(), kind)


def public(signer: SnsSigner) -> rsa.RSAPublicKey:
    return signer.key.public_key()


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", ["Amazon SES Email Event Notification", None])
def test_a_notification_signed_by_sns_verifies(
    signer: SnsSigner, version: str, subject: str | None
) -> None:
    envelope = signer.notification({"notificationType": "Bounce"}, version=version, subject=subject)
    message = posted(envelope)
    sns.verify(message, public(signer))  # raises if not
    assert message.type is sns.MessageType.NOTIFICATION
    assert sns.event(message) == {"notificationType": "Bounce"}
    assert (b"Subject\n" in sns.canonical(message)) is (subject is not None)


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_subscription_confirmation_signed_by_sns_verifies(
    signer: SnsSigner, version: str
) -> None:
    message = posted(signer.subscription(version=version))
    sns.verify(message, public(signer))
    assert message.subscribe_url is not None
    assert "Action=ConfirmSubscription" in message.subscribe_url


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("Message", '{"notificationType": "Complaint"}'),
        ("TopicArn", "arn:aws:sns:eu-west-1:123456789012:other"),
        ("Timestamp", "2026-12-07T02:00:00.000Z"),
        ("MessageId", "00000000-0000-0000-0000-000000000000"),
        ("Subject", "Something else"),
    ],
)
def test_a_changed_signed_field_fails_the_signature(
    signer: SnsSigner, field: str, value: str
) -> None:
    envelope = signer.notification({"notificationType": "Bounce"}) | {field: value}
    with pytest.raises(Refused) as refused:
        sns.verify(posted(envelope), public(signer))
    assert refused.value.field == "Signature"


def test_fields_sns_does_not_sign_may_change(signer: SnsSigner) -> None:
    envelope = signer.notification({"notificationType": "Bounce"})
    envelope["UnsubscribeURL"] = "https://elsewhere.example/"
    sns.verify(posted(envelope), public(signer))


def test_another_keys_signature_or_the_other_hash_is_refused(signer: SnsSigner) -> None:
    stranger = SnsSigner(AWS_CERT)
    forged = posted(stranger.notification({"notificationType": "Bounce"}))
    with pytest.raises(Refused):
        sns.verify(forged, public(signer))
    # Signed with SHA256 but claiming version 1 (SHA1): not the string that was signed.
    relabelled = signer.notification({"notificationType": "Bounce"}, version="2")
    relabelled["SignatureVersion"] = "1"
    with pytest.raises(Refused):
        sns.verify(posted(relabelled), public(signer))


@pytest.mark.parametrize(
    ("change", "header", "field"),
    [
        ({}, None, sns.TYPE_HEADER),
        ({}, "SubscriptionConfirmation", sns.TYPE_HEADER),
        ({"Type": "Gossip"}, "Gossip", "Type"),
        ({"TopicArn": ""}, "default", "TopicArn"),
        ({"Signature": "not base64!"}, "default", "Signature"),
        ({"Timestamp": "yesterday"}, "default", "Timestamp"),
        ({"Timestamp": "2026-12-07T02:00:00"}, "default", "Timestamp"),
        ({"Subject": 7}, "default", "Subject"),
    ],
)
def test_what_is_not_an_sns_message_is_malformed_naming_the_field(
    signer: SnsSigner, change: dict[str, Any], header: str | None, field: str
) -> None:
    envelope = signer.notification({"notificationType": "Bounce"}) | change
    with pytest.raises(Malformed) as malformed:
        posted(envelope, header)
    assert malformed.value.field == field


@pytest.mark.parametrize("raw", [b"", b"not json", b"[1, 2]", b"\xff\xfe", b"[" * 100_000])
def test_a_body_that_is_no_envelope_is_malformed(raw: bytes) -> None:
    with pytest.raises(Malformed) as malformed:
        sns.read(raw, "Notification")
    assert malformed.value.field == "body"


def origin(message: sns.SnsMessage, **overrides: Any) -> None:
    options: dict[str, Any] = {
        "topics": [TOPIC],
        "certificate_url_pattern": DEFAULT_PATTERN,
        "now": NOW,
    } | overrides
    sns.check_origin(message, **options)


def at(signer: SnsSigner, moment: dt.datetime, **fields: Any) -> sns.SnsMessage:
    return posted(signer.notification({"notificationType": "Bounce"}, at=moment) | fields)


def test_a_configured_topic_from_an_sns_certificate_url_passes(signer: SnsSigner) -> None:
    origin(at(signer, NOW - dt.timedelta(minutes=59)))
    origin(posted(signer.subscription()), now=dt.datetime.now(dt.UTC))


@pytest.mark.parametrize(
    ("fields", "overrides", "field"),
    [
        ({}, {"topics": []}, "TopicArn"),
        ({"TopicArn": "arn:aws:sns:eu-west-1:999999999999:other"}, {}, "TopicArn"),
        ({"SignatureVersion": "3"}, {}, "SignatureVersion"),
        ({"SigningCertURL": AWS_CERT.replace("https:", "http:")}, {}, "SigningCertURL"),
        (
            {"SigningCertURL": AWS_CERT.replace(".com/", ".com.attacker.example/")},
            {},
            "SigningCertURL",
        ),
        (
            {"SigningCertURL": "https://attacker.example/sns.eu-west-1.amazonaws.com/x.pem"},
            {},
            "SigningCertURL",
        ),
        ({"SigningCertURL": AWS_CERT + "?x=.pem"}, {}, "SigningCertURL"),
        ({}, {"now": NOW + dt.timedelta(hours=3)}, "Timestamp"),  # a replay, hours later
        ({}, {"now": NOW - dt.timedelta(hours=1)}, "Timestamp"),  # from the future
    ],
)
def test_what_is_refused_before_any_certificate_is_fetched(
    signer: SnsSigner, fields: dict[str, Any], overrides: dict[str, Any], field: str
) -> None:
    with pytest.raises(Refused) as refused:
        origin(at(signer, NOW, **fields), **overrides)
    assert refused.value.field == field
    if overrides.get("topics") == []:
        assert "set HUB_SES_TOPIC_ARNS" in refused.value.message


def test_a_subscribe_url_on_another_host_is_refused(signer: SnsSigner) -> None:
    message = posted(signer.subscription(subscribe_origin="https://attacker.example"))
    with pytest.raises(Refused) as refused:
        origin(message, now=dt.datetime.now(dt.UTC))
    assert refused.value.field == "SubscribeURL"


def test_the_default_pattern_takes_every_region_and_china() -> None:
    for url in (
        AWS_CERT,
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-01ab.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-01ab.pem",
        "https://sns.ap-southeast-2.amazonaws.com/SimpleNotificationService-01ab.pem",
        "https://sns.il-central-1.amazonaws.com/SimpleNotificationService-01ab.pem",
    ):
        envelope = SnsSigner(url).notification({"notificationType": "Bounce"}, at=NOW)
        origin(posted(envelope))


@pytest.mark.parametrize(
    "host",
    [
        "sns.s3.amazonaws.com",  # the S3 bucket `sns`: anyone's
        "sns.amazonaws.com",
        "sns.s3.eu-west-1.amazonaws.com",
        "sns.eu-west-1.s3.amazonaws.com",
        "sns.my-bucket.amazonaws.com",
        "sns.eu-west-1a.amazonaws.com",
    ],
)
def test_the_default_pattern_refuses_hosts_that_are_no_sns_region(
    signer: SnsSigner, host: str
) -> None:
    url = f"https://{host}/SimpleNotificationService-9c6465fa7f48f5cacd23014631ec1136.pem"
    with pytest.raises(Refused) as refused:
        origin(at(signer, NOW, SigningCertURL=url))
    assert refused.value.field == "SigningCertURL"


class CertificateHost:
    """What an SNS host answers at AWS_CERT (`pem`, or `status`), and how often it was asked."""

    def __init__(self, pem: bytes, status: int = 200) -> None:
        self.pem, self.status, self.fetches = pem, status, 0

    def client(self) -> SnsClient:
        return SnsClient(transport=httpx.MockTransport(self._answer))

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.fetches += 1
        assert str(request.url) == AWS_CERT
        return httpx.Response(self.status, content=self.pem)


def test_a_certificate_of_snss_is_fetched_once_and_kept(signer: SnsSigner) -> None:
    host = CertificateHost(certificate(signer.key))
    client, now = host.client(), dt.datetime.now(dt.UTC)
    message = posted(signer.notification({"notificationType": "Bounce"}))
    for _ in range(3):
        sns.verify(message, client.public_key(AWS_CERT, now=now))
    assert host.fetches == 1


@pytest.mark.parametrize(
    ("common_name", "said"),
    [
        ("sns.eu-west-1.amazonaws.com", "issued to sns.eu-west-1.amazonaws.com"),
        ("attacker.example", "issued to attacker.example"),
        (None, "issued to no common name"),
    ],
)
def test_a_certificate_issued_to_another_name_is_refused_and_not_fetched_again_for_a_while(
    signer: SnsSigner, common_name: str | None, said: str
) -> None:
    host = CertificateHost(certificate(signer.key, common_name))
    client, now = host.client(), dt.datetime.now(dt.UTC)
    with pytest.raises(Refused) as refused:
        client.public_key(AWS_CERT, now=now)
    assert refused.value.field == "SigningCertURL"
    assert said in refused.value.message
    assert "not sns.amazonaws.com" in refused.value.message
    host.pem = certificate(signer.key)  # mended: still not fetched within FAILED_FOR
    for later in (dt.timedelta(0), FAILED_FOR - dt.timedelta(seconds=1)):
        with pytest.raises(Refused) as again:
            client.public_key(AWS_CERT, now=now + later)
        assert "not fetched again until" in again.value.message
    assert host.fetches == 1
    client.public_key(AWS_CERT, now=now + FAILED_FOR)  # then fetched, and believed
    assert host.fetches == 2


@pytest.mark.parametrize("status", [500, 503, 429])
def test_an_sns_host_that_fails_is_unavailable_and_asked_again_after_a_while(
    signer: SnsSigner, status: int
) -> None:
    host = CertificateHost(b"", status=status)
    client, now = host.client(), dt.datetime.now(dt.UTC)
    for _ in range(3):
        with pytest.raises(Unavailable):
            client.public_key(AWS_CERT, now=now)
    assert host.fetches == 1
    host.pem, host.status = certificate(signer.key), 200
    client.public_key(AWS_CERT, now=now + FAILED_FOR + dt.timedelta(seconds=1))
    assert host.fetches == 2


def test_an_event_that_is_not_json_is_malformed_naming_the_message(signer: SnsSigner) -> None:
    for text in ("not json", "[1]"):
        message = posted(signer.notification(text))
        with pytest.raises(Malformed) as malformed:
            sns.event(message)
        assert malformed.value.field == "Message"
