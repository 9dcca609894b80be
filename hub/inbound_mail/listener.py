"""The SMTP (or LMTP) listener for Hub's bounce and unsubscribe mailboxes, on aiosmtpd.

It accepts a recipient only if it is one of the two mailboxes (550 5.1.1 for anything else, so
it can never relay), at most MAX_RECIPIENTS of them per message and MAX_BOUNCE_RECIPIENTS for
the bounce mailbox (a report is addressed to one VERP address), messages up to the size limit
(552 5.3.4 beyond); lines are capped at RFC 5321's 1,000 octets by aiosmtpd, and connections
and their time by hub.inbound_mail.guard. Each message is handled once, for all its recipients,
in a worker thread (hub.inbound_mail.handling), never on the event loop, which may be the API's
own. After DATA, SMTP answers once for the message (451 4.3.0 when any recipient must be
retried, so nothing is lost); LMTP answers for each recipient, as RFC 2033 asks.

aiosmtpd logs every command at INFO, recipients included, and an unsubscribe address carries
the person's token: its logger is kept at WARNING, and Hub logs what matters itself.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SmtpSession

from hub.inbound_mail.guard import Connections, Guarded, GuardedLmtp, Limits
from hub.inbound_mail.handling import Answer, Inbox, max_bytes
from hub.inbound_mail.mailboxes import Kind, Mailboxes, Recipient
from hub.runtime import Runtime
from hub.settings import Settings

log = logging.getLogger("hub.inbound_mail")
MAX_RECIPIENTS = 50  # a relay batching a few unsubscribes is fine; more is not Hub's mail
MAX_BOUNCE_RECIPIENTS = 10  # a DSN has one; the same bytes to many VERP addresses are no DSN
HANDLER_THREADS = 4
OK = "250 2.0.0 OK"
TRY_LATER = "451 4.3.0 Temporary failure, please try again later"
TOO_MANY = "452 4.5.3 Too many recipients"


@dataclass(frozen=True, slots=True)
class ListenerOptions:
    """Where and how a listener listens: what `hub serve`'s banner names and the listener
    runs with, made without starting anything."""

    mailboxes: Mailboxes
    host: str
    port: int
    max_bytes: int
    lmtp: bool = False
    hostname: str | None = None  # the greeting's; None: aiosmtpd asks the system
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        host: str | None = None,
        port: int | None = None,
        lmtp: bool | None = None,
    ) -> ListenerOptions:
        """As HUB_INBOUND_MAIL_* say, each overridable (the command's options). Raises
        NoMailboxes when neither mailbox is configured, ValueError when no port is given."""
        chosen = settings.inbound_mail_port if port is None else port
        if chosen is None:
            raise ValueError("inbound mail needs a port: HUB_INBOUND_MAIL_PORT or --port")
        from hub.channels.email.smtp import default_helo_name

        return cls(
            Mailboxes.from_settings(settings),
            host=host or settings.inbound_mail_host,
            port=chosen,
            lmtp=settings.inbound_mail_protocol == "lmtp" if lmtp is None else lmtp,
            max_bytes=max_bytes(settings),
            hostname=settings.smtp_helo_name or default_helo_name(settings.public_url),
        )

    @property
    def url(self) -> str:
        """`smtp://127.0.0.1:2525`, for the banner."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'lmtp' if self.lmtp else 'smtp'}://{host}:{self.port}"

    @property
    def banner(self) -> str:
        """`inbound mail: smtp://127.0.0.1:2525 (bounces@example.com, unsubscribe@example.com)`"""
        return f"inbound mail: {self.url} ({self.mailboxes.described()})"


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
            return TOO_MANY
        to = self.mailboxes.which(address)
        if to is None:
            log.info(
                "inbound mail from %s refused for %s: not a mailbox of Hub's",
                _peer(session),
                _without_detail(address),
            )
            return "550 5.1.1 No such mailbox here"
        if to.kind is Kind.BOUNCE and self._bounces(envelope) >= MAX_BOUNCE_RECIPIENTS:
            return TOO_MANY
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: SmtpSession, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        deliver = functools.partial(
            self.inbox.deliver, raw, self._recipients(envelope), peer=_peer(session)
        )
        answers = await asyncio.get_running_loop().run_in_executor(self.threads, deliver)
        if self.lmtp:  # one reply per accepted recipient, in RCPT order
            return "\r\n".join(OK if a is Answer.DONE else TRY_LATER for a in answers)
        return OK if all(a is Answer.DONE for a in answers) else TRY_LATER

    def _recipients(self, envelope: Envelope) -> list[Recipient]:
        found = [self.mailboxes.which(address) for address in envelope.rcpt_tos]
        return [to for to in found if to is not None]  # all of them: checked at RCPT time

    def _bounces(self, envelope: Envelope) -> int:
        return sum(to.kind is Kind.BOUNCE for to in self._recipients(envelope))


class Listener:
    """One listening socket for the two mailboxes; started and stopped on a running loop (the
    API's lifespan, or `hub inbound-mail`)."""

    def __init__(self, runtime: Runtime, options: ListenerOptions) -> None:
        self.options = options
        self._threads = ThreadPoolExecutor(HANDLER_THREADS, thread_name_prefix="inbound-mail")
        inbox = Inbox.build(runtime)
        self._handler = Handler(options.mailboxes, inbox, self._threads, lmtp=options.lmtp)
        self._connections = Connections(options.limits)
        self._server: asyncio.AbstractServer | None = None

    @property
    def port(self) -> int:
        """The port listened on (the one the system chose, once started, when 0 was asked)."""
        return self.options.port

    async def start(self) -> None:
        # Recipients, unsubscribe tokens among them, are in aiosmtpd's INFO lines.
        logging.getLogger("mail.log").setLevel(logging.WARNING)
        options = self.options
        protocol = type(
            "InboundLmtp" if options.lmtp else "InboundSmtp",
            (GuardedLmtp if options.lmtp else Guarded,),
            {"connections": self._connections},
        )
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: protocol(
                self._handler,
                data_size_limit=options.max_bytes,
                enable_SMTPUTF8=True,  # RFC 6533 reports for international addresses
                hostname=options.hostname,
                ident="Hub inbound mail",
                timeout=options.limits.idle,
                loop=loop,
            ),
            host=options.host,
            port=options.port,
        )
        if options.port == 0:  # a free port was asked for: say which one
            bound = self._server.sockets[0].getsockname()[1]
            self.options = dataclasses.replace(options, port=bound)
        log.info(
            "inbound mail listening on %s for %s",
            self.options.url,
            options.mailboxes.described(),
        )

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
