"""Keyed hashes: API key secrets and addresses kept on the suppression list after erasure."""

from __future__ import annotations

import hashlib
import hmac

from hub.domain import Channel


def token_hash(secret: str) -> str:
    # API key secrets are 256 random bits: a fast hash is enough and keeps auth cheap per request.
    return hashlib.sha256(secret.encode()).hexdigest()


class AddressHasher:
    """HMAC of a channel's normalised address; the key must not change in a deployment's life."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_secret(cls, secret: str) -> AddressHasher:
        return cls(hmac.new(secret.encode(), b"hub/suppression-address", hashlib.sha256).digest())

    def __call__(self, channel: Channel, address: str) -> str:
        message = f"{channel.value}:{normalize_address(channel, address)}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def subject(self, external_id: str) -> str:
        return hmac.new(self._key, f"contact:{external_id}".encode(), hashlib.sha256).hexdigest()


def normalize_address(channel: Channel, address: str) -> str:
    return address.strip().lower() if channel is Channel.EMAIL else address.strip()
