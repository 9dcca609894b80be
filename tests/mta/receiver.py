"""A receiving mail server for Hub to send to directly, writing a message down as a real MX
delivers it: Return-Path from the envelope, and a Received line in Postfix's format naming the
HELO Hub greeted with.

The tests run on loopback, but a receiver's filters (SpamAssassin) trust 127.0.0.0/8 and skip
their checks of a trusted relay, so the Received line names the client by an address from the
IPv6 documentation prefix (RFC 3849), as if Hub sent from the internet (SpamAssassin scores the
IPv4 TEST-NETs as illegal, RCVD_ILLEGAL_IP, and trusts private ranges). Its reverse DNS is
written as the HELO name: that is the set-up docs/operations.md asks of an operator (a
forward-confirmed name); what is scored is everything Hub itself controls.
"""

from __future__ import annotations

import email.utils
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email import message_from_bytes, policy

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.mta.postfix import free_port

MX = "mx.receiver.example"
CLIENT_IP = "IPv6:2001:db8::25"  # a header only, nothing is sent there


@dataclass(frozen=True, slots=True)
class Delivered:
    helo: str
    mail_from: str
    rcpt_to: str
    data: bytes  # as the MX would store it: Return-Path and Received first

    def html(self) -> str | None:
        """The HTML part's text, decoded; None for a message without one."""
        parsed = message_from_bytes(self.data, policy=policy.default)
        part = parsed.get_body(preferencelist=("html",))
        return None if part is None else str(part.get_content())


class _Handler:
    def __init__(self) -> None:
        self.delivered: list[Delivered] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        helo = session.host_name or "unknown"
        content = envelope.original_content or b""
        for rcpt in envelope.rcpt_tos:
            queue_id = secrets.token_hex(5).upper()
            header = (
                f"Return-Path: <{envelope.mail_from}>\r\n"
                f"Received: from {helo} ({helo} [{CLIENT_IP}])\r\n"
                f"\tby {MX} (Postfix) with ESMTP id {queue_id}\r\n"
                f"\tfor <{rcpt}>; {email.utils.formatdate(localtime=False)}\r\n"
            )
            with self.lock:
                self.delivered.append(
                    Delivered(helo, envelope.mail_from or "", rcpt, header.encode() + content)
                )
        return "250 2.0.0 Ok: queued"


class Receiver:
    def __init__(self, handler: _Handler, port: int) -> None:
        self._handler = handler
        self.port = port

    @property
    def delivered(self) -> list[Delivered]:
        with self._handler.lock:
            return list(self._handler.delivered)


@contextmanager
def receiving() -> Iterator[Receiver]:
    """An MX on a free loopback port for as long as the block runs."""
    handler = _Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname=MX)
    controller.start()
    try:
        yield Receiver(handler, port)
    finally:
        controller.stop()
