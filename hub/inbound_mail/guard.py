"""How much of the listener one client may hold: connections at once (in all, and per client
address) and how long a session and its DATA may last.

aiosmtpd alone has one idle timeout that every command restarts, and no limit per client: a
few clients could take every connection and keep them for ever with a NOOP every few minutes.
Here a client gets at most Limits.per_client connections (421 4.7.0 beyond, as Postfix's anvil
answers), a session ends after Limits.session and a DATA after Limits.data whatever the client
does meanwhile (421 4.4.2, as Postfix answers a timeout), and an idle client is told so too.
Time spent handling a received message is Hub's, not the client's: no deadline cuts it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, syntax

log = logging.getLogger("hub.inbound_mail")
TOO_BIG = "552 5.3.4 Message too big for this mailbox"
BUSY = "421 4.3.2 Too many connections, try again later"
BUSY_CLIENT = "421 4.7.0 Too many connections from your address, try again later"
# A connection cut by a deadline whose goodbye the client does not read is dropped after this.
GOODBYE_GRACE = 5.0


@dataclass(frozen=True, slots=True)
class Limits:
    connections: int = 100  # at once, from everyone
    per_client: int = 10  # at once, from one IPv4 address or IPv6 /64
    idle: float = 300.0  # seconds between commands; RFC 5321 4.5.3.2.7 asks for at least 5 min
    session: float = 600.0  # seconds from connecting to the last reply, whatever is sent
    data: float = 120.0  # seconds from DATA to the final dot


@dataclass
class Connections:
    """The open connections, counted in all and per client so a flood is turned away, and
    closed on stop."""

    limits: Limits
    open: set[SMTP] = field(default_factory=set)
    per_client: Counter[str] = field(default_factory=Counter)


def client_of(peer: Any) -> str:
    """Whom a connection counts against: its IPv4 address, or its IPv6 /64 (a single machine
    is often given a whole /64, and could otherwise take a new address per connection)."""
    host = str(peer[0]) if isinstance(peer, tuple) and peer else str(peer)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class Guarded(SMTP):
    """aiosmtpd's SMTP with Hub's limits and enhanced status codes (RFC 3463) where aiosmtpd
    gives plain ones."""

    connections: Connections  # set on the class made per listener
    _client = ""
    _session_ends = math.inf  # loop time
    _data_ends = math.inf
    _timer_for = "idle"  # which of the three the running timer stands for

    def connection_made(self, transport: Any) -> None:
        # Before aiosmtpd's own, which starts the first timer: it must know the deadline.
        self._session_ends = self.loop.time() + self.connections.limits.session
        super().connection_made(transport)
        self._client = client_of(transport.get_extra_info("peername"))
        self.connections.open.add(self)
        self.connections.per_client[self._client] += 1

    def connection_lost(self, error: Exception | None) -> None:
        if self in self.connections.open:
            self.connections.open.discard(self)
            self.connections.per_client[self._client] -= 1
            if self.connections.per_client[self._client] <= 0:
                del self.connections.per_client[self._client]
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        limits = self.connections.limits
        refusal = None
        if len(self.connections.open) > limits.connections:
            refusal = BUSY
        elif self.connections.per_client[self._client] > limits.per_client:
            refusal = BUSY_CLIENT
            log.info(
                "inbound mail from %s refused: more than %d connections from that address",
                self._client,
                limits.per_client,
            )
        if refusal is not None:
            await self.push(refusal)
            if self.transport is not None:
                self.transport.close()
            return
        await super()._handle_client()

    async def push(self, status: Any) -> None:
        # aiosmtpd's own size refusals (MAIL FROM SIZE=, and DATA past the limit) lack the
        # enhanced code a sending MTA reads to tell a permanent refusal's reason.
        if isinstance(status, str) and status.startswith("552 Error"):
            status = TOO_BIG
        await super().push(status)

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        self._data_ends = self.loop.time() + self.connections.limits.data
        self._reset_timeout()
        try:
            await super().smtp_DATA(arg)
        finally:
            self._data_ends = math.inf
            if self.transport is not None:
                self._reset_timeout()  # the idle timer again, not DATA's deadline

    async def _call_handler_hook(self, command: str, *args: Any) -> Any:
        if command != "DATA":
            return await super()._call_handler_hook(command, *args)
        # The whole message is in: handling it is Hub's time. A deadline that cut it now
        # would leave the sender without an answer, to send it again.
        if self._timeout_handle is not None:
            self._timeout_handle.cancel()
        try:
            return await super()._call_handler_hook(command, *args)
        finally:
            self._data_ends = math.inf
            if self.transport is not None:
                self._reset_timeout()  # fires at once if the session ran out meanwhile

    def _reset_timeout(self, duration: float | None = None) -> None:
        # aiosmtpd calls this on connecting and after every command, restarting its idle
        # timer; the deadlines never move, so the timer never runs past the nearer one.
        now = self.loop.time()
        waits = (
            (duration or self._timeout_duration, "idle"),
            (self._session_ends - now, "session"),
            (self._data_ends - now, "data"),
        )
        wait, self._timer_for = min(waits)
        # aiosmtpd reads a zero as "the idle timeout": a deadline past is one a moment away.
        super()._reset_timeout(max(wait, 0.001))

    def _timeout_cb(self) -> None:
        transport = self.transport
        if transport is None:
            return
        said = {
            "idle": "Idle too long",
            "session": "Session too long",
            "data": "DATA took too long",
        }[self._timer_for]
        log.info("inbound mail from %s: %s, connection closed", self._client, said.lower())
        self._writer.write(f"421 4.4.2 {said}, closing connection\r\n".encode())
        transport.close()  # as aiosmtpd's own timeout does: connection_lost cleans up
        # close() waits to send what is buffered; a client that never reads would keep the
        # connection (and its place in the counts) for ever.
        if isinstance(transport, asyncio.WriteTransport):
            self.loop.call_later(GOODBYE_GRACE, transport.abort)


class GuardedLmtp(Guarded, LMTP):
    pass
