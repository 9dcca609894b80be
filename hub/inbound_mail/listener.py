"""The SMTP (or LMTP) listener for Hub's bounce and unsubscribe mailboxes, on aiosmtpd.

It accepts a recipient only if it is one of the two mailboxes (550 5.1.1 for anything else, so
it can never relay), at most MAX_RECIPIENTS of them per message, messages up to
HUB_INBOUND_MAIL_MAX_BYTES (552 5.3.4 beyond), MAX_CONNECTIONS at once (421 4.3.2 beyond);
lines are capped at RFC 5321's 1,000 octets by aiosmtpd and an idle client is dropped after
IDLE_TIMEOUT. Each message is handled in a worker thread (hub.inbound_mail.handling), never on
the event loop, which may be the API's own. After DATA, SMTP answers once for the message
(451 4.3.0 when any recipient must be retried, so nothing is lost); LMTP answers for each
recipient, as RFC 2033 asks.

aiosmtpd logs every command at INFO, recipients included, and an unsubscribe address carries
the person's token: its logger is kept at WARNING, and Hub logs what matters itself.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from hub.inbound_mail.handling import Answer, Inbox
from hub.inbound_mail.mailboxes import Mailboxes, Recipient
from hub.runtime import Runtime

log = logging.getLogger("hub.inbound_mail")
MAX_RECIPIENTS = 50  # a DSN has one; a relay batching a few is fine; more is not a bounce
MAX_CONNECTIONS = 100
IDLE_TIMEOUT = 300.0  # seconds; RFC 5321 4.5.3.2.7 asks servers to wait at least 5 minutes
HANDLER_THREADS = 4
OK = "250 2.0.0 OK"
TRY_LATER = "451 4.3.0 Temporary failure, please try again later"
TOO_BIG = "552 5.3.4 Message too big for this mailbox"


@dataclass
class _Connections:
    """The open connections, counted so a flood is turned away, and closed on stop."""

    limit: int
    open: set[SMTP] = field(default_factory=set)


class _Guarded(SMTP):
    """aiosmtpd's SMTP with Hub's limits and enhanced status codes (RFC 3463) where aiosmtpd
    gives plain ones."""

    connections: _Connections  # set on the class made per listener

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.connections.open.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self.connections.open.discard(self)
        super().connection_lost(error)

    async def _handle_client(self) -> None:
        if len(self.connections.open) > self.connections.limit:
            await self.push("421 4.3.2 Too many connections, try again later")
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


class _GuardedLmtp(_Guarded, LMTP):
    pass


class Handler:
    """aiosmtpd's hooks: which recipients are accepted, and what is done with the message."""

    def __init__(
        self, mailboxes: Mailboxes, inbox: Inbox, threads: ThreadPoolExecutor, *, lmtp: bool
    ) -> None:
        self.mailboxes = mailboxes
        self.inbox = inbox
        self.threads = threads
        self.lmtp = lmtp

    async def handle_RCPT(
        self,
        server: SMTP,
        session: SmtpSession,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if len(envelope.rcpt_tos) >= MAX_RECIPIENTS:
            return "452 4.5.3 Too many recipients"
        if self.mailboxes.which(address) is None:
            log.info(
                "inbound mail from %s refused for %s: not a mailbox of Hub's",
                _peer(session),
                _without_detail(address),
            )
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        peer = _peer(session)
        loop = asyncio.get_running_loop()
        answers: list[Answer] = []
        for address in envelope.rcpt_tos:
            to = self.mailboxes.which(address)
            assert to is not None  # checked at RCPT time
            answers.append(await loop.run_in_executor(self.threads, self._deliver, raw, to, peer))
        if self.lmtp:  # one reply per accepted recipient, in RCPT order
            return "\r\n".join(OK if a is Answer.DONE else TRY_LATER for a in answers)
        return OK if all(a is Answer.DONE for a in answers) else TRY_LATER

    def _deliver(self, raw: bytes, to: Recipient, peer: str) -> Answer:
        return self.inbox.deliver(raw, to, peer=peer)


class Listener:
    """One listening socket for the two mailboxes; started and stopped on a running loop (the
    API's lifespan, or `hub inbound-mail`)."""

    def __init__(
        self,
        runtime: Runtime,
        mailboxes: Mailboxes,
        *,
        host: str,
        port: int,
        lmtp: bool = False,
        max_bytes: int,
        hostname: str | None = None,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.mailboxes = mailboxes
        self.host, self.port, self.lmtp = host, port, lmtp
        self.max_bytes = max_bytes
        self.hostname = hostname
        self._threads = ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="inbound-mail")
        self._handler = Handler(mailboxes, Inbox.build(runtime), self._threads, lmtp=lmtp)
        self._connections = _Connections(max_connections)
        self._server: asyncio.AbstractServer | None = None

    @classmethod
    def from_settings(
        cls,
        runtime: Runtime,
        *,
        host: str | None = None,
        port: int | None = None,
        lmtp: bool | None = None,
    ) -> Listener:
        """As HUB_INBOUND_MAIL_* say, each overridable (the command's options). Raises
        NoMailboxes when neither mailbox is configured, ValueError when no port is given."""
        settings = runtime.settings
        chosen = settings.inbound_mail_port if port is None else port
        if chosen is None:
            raise ValueError("inbound mail needs a port: HUB_INBOUND_MAIL_PORT or --port")
        from hub.channels.email.smtp import default_helo_name

        return cls(
            runtime,
            Mailboxes.from_settings(settings),
            host=host or settings.inbound_mail_host,
            port=chosen,
            lmtp=settings.inbound_mail_protocol == "lmtp" if lmtp is None else lmtp,
            max_bytes=settings.inbound_mail_max_bytes,
            hostname=settings.smtp_helo_name or default_helo_name(settings.public_url),
        )

    @property
    def url(self) -> str:
        """`smtp://127.0.0.1:2525`, for the banner."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'lmtp' if self.lmtp else 'smtp'}://{host}:{self.port}"

    async def start(self) -> None:
        # Recipients, unsubscribe tokens among them, are in aiosmtpd's INFO lines.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        protocol = type(
            "InboundLmtp" if self.lmtp else "InboundSmtp",
            (_GuardedLmtp if self.lmtp else _Guarded,),
            {"connections": self._connections},
        )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: protocol(
                self._handler,
                data_size_limit=self.max_bytes,
                enable_SMTPUTF8=True,  # RFC 6533 reports for international addresses
                hostname=self.hostname,
                ident="Hub inbound mail",
                timeout=IDLE_TIMEOUT,
                loop=loop,
            ),
            host=self.host,
            port=self.port,
        )
        if self.port == 0:  # a free port was asked for: say which one
            self.port = self._server.sockets[0].getsockname()[1]
        log.info("inbound mail listening on %s for %s", self.url, self.mailboxes.described())

    async def stop(self) -> None:
        """Stop accepting, drop open connections (a sender retries what was not answered),
        and let messages being handled finish."""
        if self._server is not None:
            self._server.close()
            for connection in list(self._connections.open):
                if connection.transport is not None:
                    connection.transport.close()
            await self._server.wait_closed()
            self._server = None
        await asyncio.get_running_loop().run_in_executor(None, self._threads.shutdown)


def _peer(session: SmtpSession) -> str:
    peer = session.peer
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return str(peer)


def _without_detail(address: str) -> str:
    """An address for the log with anything after `+` cut (it may be a token)."""
    local, at, domain = address.rpartition("@")
    base, plus, _ = local.partition("+")
    return f"{base}{'+…' if plus else ''}{at}{domain}"
