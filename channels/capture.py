"""The development sink: accepts every message on every channel and hands it back to be kept."""

from __future__ import annotations

from typing import ClassVar

from hub.channels.base import ChannelAdapter, ChannelOptions, OutgoingMessage, Receipt
from hub.domain import Channel


class CaptureOptions(ChannelOptions):
    pass


class CaptureChannel:
    """Used for any channel with no provider configured. What it captured is listable
    through `GET /v1/captures`: the dispatcher stores `Receipt.captured` beside the outcome.
    """

    name: ClassVar[str] = "capture"
    kinds: ClassVar[frozenset[Channel]] = frozenset(Channel)
    options_model: ClassVar[type[ChannelOptions]] = CaptureOptions

    @classmethod
    def from_options(cls, options: CaptureOptions) -> ChannelAdapter:
        return cls()

    async def send(self, message: OutgoingMessage) -> Receipt:
        return Receipt(provider_id=f"capture:{message.key}", captured=message)

    async def aclose(self) -> None:
        return None
