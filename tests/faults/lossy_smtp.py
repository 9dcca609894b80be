"""An SMTP peer that can take a message and then lose the connection before its reply.

`SmtpPeer`'s own `drop` at DATA loses the message with the connection. This is the other
half of the same fault, the one that makes copies: the server has the message, the sender
never hears so, and a resend under the same Message-ID is the second copy.
"""

from __future__ import annotations

import asyncio

from aiosmtpd.smtp import SMTP

from tests.peers.smtp import Received, SmtpPeer, Stage


class ReplyLosingSmtpPeer(SmtpPeer):
    def __init__(self) -> None:
        super().__init__()
        self._losing: dict[str, int] = {}

    def __enter__(self) -> ReplyLosingSmtpPeer:
        self.start()
        return self

    def lose_reply(self, address: str, *, times: int = 1) -> None:
        """Keep the next `times` messages to `address`, then hang up instead of answering."""
        with self.lock:
            self._losing[address.lower()] = times

    def _take_losing(self, addresses: list[str]) -> bool:
        with self.lock:
            for address in addresses:
                if self._losing.get(address.lower(), 0) > 0:
                    self._losing[address.lower()] -= 1
                    return True
        return False

    async def misbehave(self, server: SMTP, stage: Stage, addresses: list[str]) -> str | None:
        if stage == "data" and self._take_losing(addresses):
            envelope = server.envelope
            assert envelope is not None
            kept = Received(
                mail_from=envelope.mail_from or "",
                rcpt_tos=tuple(envelope.rcpt_tos),
                data=envelope.original_content or b"",
                mail_options=tuple(envelope.mail_options),
                login=None,
                tls=False,
            )
            self.record(kept)
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()
            await asyncio.sleep(3600)  # aiosmtpd cancels the handler on connection_lost
        return await super().misbehave(server, stage, addresses)
