"""Standard Webhooks signatures: `whsec_` secrets, v1 HMAC-SHA256 and the three headers."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import time

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix, not a secret
# The specification asks for 24 to 64 random bytes; fewer is guessable, more buys nothing.
MIN_SECRET_BYTES = 24
MAX_SECRET_BYTES = 64


def parse_secret(value: str) -> bytes:
    """The key inside a `whsec_<base64>` secret (the prefix is optional, padding too).

    Raises:
        ValueError: not base64, or not 24 to 64 bytes long.
    """
    encoded = value.strip().removeprefix(SECRET_PREFIX)
    try:
        # Receivers (the reference library among them) accept unpadded base64, so we do too.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except binascii.Error:
        raise ValueError("webhook secret must be whsec_ followed by base64") from None
    if not MIN_SECRET_BYTES <= len(key) <= MAX_SECRET_BYTES:
        raise ValueError(
            f"webhook secret must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} bytes, "
            f"not {len(key)}"
        )
    return key


def generate_secret() -> str:
    """A new random secret in the `whsec_` form receivers paste into their verifier."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: `v1,` and the base64 HMAC-SHA256 of `id.timestamp.body`."""
    digest = hmac.new(secret, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_headers(
    secret: bytes, *, msg_id: str, body: bytes, timestamp: int | None = None
) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt; the timestamp defaults to now.

    The id stays the same across retries (receivers drop duplicates by it); the timestamp and
    so the signature change, which lets receivers refuse replays older than their tolerance.
    """
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(secret, msg_id, ts, body),
    }
