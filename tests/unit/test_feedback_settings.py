"""The ESP feedback settings are checked when Hub starts: a bad pattern or key is a clear
error naming the setting, not a 500 or a 503 on the first webhook."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError

from hub.settings import Settings


def _public(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


def test_a_p256_key_as_sendgrid_shows_it_is_taken() -> None:
    key = _public(ec.generate_private_key(ec.SECP256R1()))
    assert Settings(sendgrid_webhook_public_key=f" {key}\n").sendgrid_webhook_public_key == key


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("not base64!", "is not a base64 public key"),
        (base64.b64encode(b"just bytes").decode(), "is not a base64 public key"),
        (_public(ec.generate_private_key(ec.SECP384R1())), "is not an ECDSA P-256 key"),
        (_public(rsa.generate_private_key(public_exponent=65537, key_size=2048)), "P-256"),
    ],
)
def test_anything_else_is_refused_naming_the_setting(value: str, words: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(sendgrid_webhook_public_key=value)
    assert "sendgrid_webhook_public_key" in str(refused.value)
    assert words in str(refused.value)


def test_the_certificate_url_pattern_must_compile() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(sns_certificate_url_pattern="https://sns.(unclosed")
    assert "sns_certificate_url_pattern" in str(refused.value)
    assert "is not a regular expression" in str(refused.value)
