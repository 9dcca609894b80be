"""Checking that an event webhook came from Hub: Standard Webhooks signatures, verified."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from hub.channels import signing

# The Standard Webhooks default: a message signed longer ago (or further ahead) is a replay,
# or a clock badly wrong.
DEFAULT_TOLERANCE = 300


class WebhookVerificationError(Exception):
    """The webhook is not Hub's, was altered, or is too old (or too new) to accept."""


def verify_webhook(
    payload: bytes,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> dict[str, Any]:
    """The event, once its `webhook-signature` proves Hub sent this exact body.

    `payload` is the raw request body (before any JSON parsing: one changed byte fails it);
    `headers` the request's headers, any case; `secret` the endpoint's `whsec_...` secret.

    Raises:
        WebhookVerificationError: a header is missing, the timestamp is more than `tolerance`
            seconds from `now` (default: the current time), no signature matches, or the body
            is not a JSON object.
    """
    lower = {name.lower(): value for name, value in headers.items()}
    msg_id = _header(lower, signing.ID_HEADER)
    stamp = _header(lower, signing.TIMESTAMP_HEADER)
    given = _header(lower, signing.SIGNATURE_HEADER)
    try:
        timestamp = int(stamp)
    except ValueError:
        raise WebhookVerificationError(f"{signing.TIMESTAMP_HEADER} is not a number") from None
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance:
        raise WebhookVerificationError(
            f"{signing.TIMESTAMP_HEADER} is {current - timestamp:.0f} s from now, over the "
            f"{tolerance:.0f} s tolerance: a replay, or a clock that is wrong"
        )
    try:
        key = signing.parse_secret(secret)
    except ValueError as exc:
        raise WebhookVerificationError(f"the secret is unusable: {exc}") from None
    expected = signing.sign(key, msg_id, timestamp, payload).encode()
    # The header may carry several space-separated signatures (during a secret's rotation).
    if not any(
        hmac.compare_digest(candidate.encode(), expected)
        for candidate in given.split()
        if candidate.startswith("v1,")
    ):
        raise WebhookVerificationError("no signature matches: another secret, or another body")
    try:
        event = json.loads(payload)
    except ValueError:
        raise WebhookVerificationError("the body is not JSON") from None
    if not isinstance(event, dict):
        raise WebhookVerificationError("the body is not a JSON object")
    return event


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if not value:
        raise WebhookVerificationError(f"the {name} header is missing")
    return value
