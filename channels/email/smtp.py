"""SMTP: the e-mail channel's options, its connection pool, and SMTP replies turned into errors."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

import idna
from aiosmtplib import (
    SMTP,
    SMTPException,
    SMTPHeloError,
    SMTPResponse,
    SMTPResponseException,
    SMTPServerDisconnected,
)
from pydantic import Field, SecretStr, field_validator, model_validator

from hub.channels.base import (
    AmbiguousDeliveryError,
    ChannelOptions,
    DeliveryError,
    OutgoingMessage,
    PermanentDeliveryError,
    Receipt,
    RetryableDeliveryError,
)
from hub.channels.email.dkim import DkimSigner, read_key
from hub.channels.email.mime import BuiltMessage, MimeBuilder
from hub.domain import Channel, SuppressionReason

_ENHANCED = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})\b")  # RFC 3463 "5.1.1"
_LINE_ENDS = re.compile(rb"\r\n|\r|\n")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
# RFC 5321 4.1.1.1: a domain, or an address literal such as [192.0.2.1] or [IPv6:2001:db8::1]
_HELO_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*|\[(?:IPv6:)?[0-9A-Fa-f:.]+\]")


def default_helo_name(public_url: str) -> str | None:
    """The public URL's host when it is a real domain name (dotted, not localhost, not an IP
    literal), in ASCII; else None, and the channel greets with `socket.getfqdn()`.

    Receivers score or refuse a HELO of `localhost` or a bare word (Postfix's
    reject_non_fqdn_helo_hostname); the host people reach Hub at is usually in DNS."""
    host = (urlsplit(public_url).hostname or "").rstrip(".")
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    if "." not in host or host == "localhost" or host.endswith(".localhost"):
        return None
    try:
        ascii_host = idna.encode(host, uts46=True).decode("ascii")
    except idna.IDNAError:
        return None
    return ascii_host if _HELO_NAME.fullmatch(ascii_host) else None


class SmtpOptions(ChannelOptions):
    """`HUB_SMTP_*` and `HUB_EMAIL_*`. `starttls` is required (no plain fallback); `none` never
    upgrades; `ssl` is TLS from the first byte (port 465)."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_pool_size: int = Field(default=8, ge=1)
    smtp_timeout: float = Field(default=30, gt=0)
    email_from: str = "Hub <hub@localhost>"
    email_message_id_domain: str | None = None  # default: the From address's domain
    # VERP: with a bounce mailbox such as bounces@example.com, each message's envelope sender
    # is bounces+hub-<notification>-<delivery>@example.com, so a bounce names its delivery
    # even when the remote system quotes nothing of the original. The mailbox must accept
    # plus-addressing and pass what it receives to POST /inbound/email/bounce.
    email_bounce_address: str | None = None
    # The EHLO/HELO name; None: socket.getfqdn(). Settings put the public URL's host here
    # when HUB_SMTP_HELO_NAME is unset (hub/channel_config.py).
    smtp_helo_name: str | None = None
    # DKIM: all three or none. The key file is read (and checked) when the options are made,
    # so a bad path stops the process at start-up rather than at the first message.
    dkim_domain: str | None = None
    dkim_selector: str | None = None
    dkim_key_file: Path | None = None

    @field_validator("smtp_helo_name")
    @classmethod
    def _helo_name(cls, value: str | None) -> str | None:
        if value and not _HELO_NAME.fullmatch(value):
            raise ValueError(
                "smtp_helo_name must be a domain name (mail.example.com) or an address "
                "literal ([192.0.2.1]), in ASCII"
            )
        return value or None

    @field_validator("dkim_domain", "dkim_selector", "dkim_key_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value  # an unset compose variable

    @model_validator(mode="after")
    def _dkim_key_readable(self) -> SmtpOptions:
        read_key(self.dkim_domain, self.dkim_selector, self.dkim_key_file)
        return self

    def dkim_signer(self) -> DkimSigner | None:
        """A signer when DKIM is configured; the key is read now, once per channel."""
        key = read_key(self.dkim_domain, self.dkim_selector, self.dkim_key_file)
        if key is None or self.dkim_domain is None or self.dkim_selector is None:
            return None
        return DkimSigner(domain=self.dkim_domain, selector=self.dkim_selector, key=key)

    @field_validator("email_bounce_address")
    @classmethod
    def _mailbox(cls, value: str | None) -> str | None:
        if value and (value.count("@") != 1 or not value.isascii() or "+" in value):
            raise ValueError("email_bounce_address must be a plain ASCII mailbox, no '+' tag")
        return value or None

    @property
    def configured(self) -> bool:
        return bool(self.smtp_host)  # "" (an unset compose variable) means unset


def _names_bad_mailbox(code: int, reply: str, stage: str) -> bool:
    """Whether a 5xx says the recipient's address itself is unusable (a hard bounce).

    An RFC 3463 code decides when present: 5.1.x (bad address) or 5.2.1 (mailbox disabled);
    5.7.x (policy, spam) is about the message or us. Without one, RCPT's 550/551/553/554 count
    (554 there is "no valid recipient", RFC 5321 3.3); a bare 550 at DATA is as often
    "content rejected". MAIL refusals concern our sender.
    """
    if stage == "MAIL":
        return False
    if enhanced := _ENHANCED.match(reply):
        klass, subject, detail = enhanced.groups()
        return klass == "5" and (subject == "1" or (subject, detail) == ("2", "1"))
    return stage == "RCPT" and code in {550, 551, 553, 554}


def _refusal(code: int, reply: str, stage: str) -> DeliveryError:
    text = f"SMTP {code} at {stage}: {reply}"
    if 500 <= code < 600:
        bad = _names_bad_mailbox(code, reply, stage)
        suppress = SuppressionReason.HARD_BOUNCE if bad else None
        return PermanentDeliveryError(text, code=str(code), suppress=suppress)
    # 4xx, and codes no server should send here: nothing was accepted, so trying again is safe.
    # 421 before any recipient is named is the server closing its service (RFC 5321 3.8),
    # whoever the message is for; later it may be about this recipient ("too busy for them").
    unavailable = code == 421 and stage == "MAIL"
    return RetryableDeliveryError(text, code=str(code), unavailable=unavailable)


async def _command(conn: SMTP, *words: bytes, expect: set[int]) -> SMTPResponse:
    reply = await conn.execute_command(*words)
    if reply.code not in expect:
        raise SMTPResponseException(reply.code, reply.message)
    return reply


class _StaleConnection(Exception):
    """A pooled connection was found dead before anything was sent: safe to retry at once."""


class _Pool:
    """At most `size` persistent connections, each leased to one transaction at a time."""

    def __init__(self, channel: EmailChannel, size: int) -> None:
        self._channel = channel
        self._slots = asyncio.Semaphore(size)
        self._idle: list[SMTP] = []
        self._closed = False
        self.opened = 0

    @contextlib.asynccontextmanager
    async def lease(self, *, fresh: bool) -> AsyncIterator[tuple[SMTP, bool]]:
        """Yield (connection, reused). A DeliveryError leaves a clean connection (the
        transaction reset or closed it); anything else, cancellation included, drops it."""
        async with self._slots:
            conn = None
            while self._idle and conn is None and not fresh:
                candidate = self._idle.pop()
                if candidate.is_connected:  # False once the server hung up while it idled
                    conn = candidate
                else:
                    candidate.close()
            reused = conn is not None
            if conn is None:
                conn = await self._channel.connect()
                self.opened += 1
            try:
                yield conn, reused
            except DeliveryError:
                self._keep(conn)
                raise
            except BaseException:
                conn.close()
                raise
            self._keep(conn)

    def _keep(self, conn: SMTP) -> None:
        if self._closed:  # a send that outlived aclose()
            conn.close()
        elif conn.is_connected:
            self._idle.append(conn)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        await asyncio.gather(*(self._quit(conn) for conn in idle))

    @staticmethod
    async def _quit(conn: SMTP) -> None:
        try:
            await conn.quit()
        except (OSError, SMTPResponseException):
            conn.close()


class EmailChannel:
    """E-mail over SMTP: one recipient per transaction over a pool of persistent connections."""

    name: ClassVar[str] = "smtp"
    kinds: ClassVar[frozenset[Channel]] = frozenset({Channel.EMAIL})
    options_model: ClassVar[type[ChannelOptions]] = SmtpOptions

    def __init__(self, options: SmtpOptions, *, tls_context: ssl.SSLContext | None = None) -> None:
        """`tls_context` replaces the system trust store (a private CA, a test certificate)."""
        self.options = options
        self._tls_context = tls_context
        self._builder = MimeBuilder(
            from_header=options.email_from, message_id_domain=options.email_message_id_domain
        )
        self._pool = _Pool(self, options.smtp_pool_size)
        # None: socket.getfqdn(), asked once (then kept from the first connection)
        self._local_hostname: str | None = options.smtp_helo_name
        self._signer = options.dkim_signer()

    @classmethod
    def from_options(cls, options: Any) -> EmailChannel:
        return cls(options)

    def _envelope_sender(self, message_id: str) -> str:
        """Where bounces go: the From address, or the VERP address naming this message."""
        bounces = self.options.email_bounce_address
        if bounces is None:
            return self._builder.from_address
        local, _, domain = bounces.partition("@")
        tag = message_id.strip("<>").partition("@")[0]
        return f"{local}+{tag}@{domain}"

    @property
    def connections_opened(self) -> int:
        """How many SMTP connections this channel has opened (the pool's reuse, observed)."""
        return self._pool.opened

    def build(self, message: OutgoingMessage) -> BuiltMessage:
        """The exact bytes `send` would transmit (dot-stuffing aside).

        Raises:
            PermanentDeliveryError: no retry can make this message buildable.
        """
        try:
            return self._builder.build(message)
        except ValueError as exc:
            raise PermanentDeliveryError(f"message cannot be built: {exc}") from exc

    async def send(self, message: OutgoingMessage) -> Receipt:
        """Send one message to its one recipient.

        Raises:
            RetryableDeliveryError: a 4xx reply, or the server was unreachable or hung up before
                the message was handed over.
            PermanentDeliveryError: a 5xx reply (`suppress=HARD_BOUNCE` for a bad mailbox), an
                unbuildable message, or an internationalised address the server cannot take.
            AmbiguousDeliveryError: the connection died or timed out after the message was sent
                but before the server's reply: it may have been delivered.
        """
        if self.options.smtp_host is None:
            raise RetryableDeliveryError(
                "HUB_SMTP_HOST is not set: no server to send to", unavailable=True
            )
        built = self.build(message)
        payload = built.data
        if built.smtputf8 or not payload.endswith(b"\r\n"):  # the fast path is CRLF already
            payload = _LINE_ENDS.sub(b"\r\n", payload)
            payload += b"" if payload.endswith(b"\r\n") else b"\r\n"
        if self._signer is not None:  # over the final bytes: nothing below changes them
            payload = self._signer.sign(payload)
        # Dot-stuffing (RFC 5321 4.5.2); the message never starts with "." (headers come first).
        payload = payload.replace(b"\r\n.", b"\r\n..") + b".\r\n"
        try:
            async with self._pool.lease(fresh=False) as (conn, reused):
                return await self._transact(conn, built, message.to, payload, reused=reused)
        except _StaleConnection:
            async with self._pool.lease(fresh=True) as (conn, _):
                return await self._transact(conn, built, message.to, payload, reused=False)

    async def connect(self) -> SMTP:
        """Open one connection (TLS and login included).

        Raises:
            RetryableDeliveryError: refused, timed out, TLS failed, or a greeting, EHLO or AUTH
                error; a wrong password is an operator's fix, not the message's fault.
        """
        options = self.options
        password = (
            (options.smtp_password.get_secret_value() or None) if options.smtp_password else None
        )
        conn = SMTP(
            hostname=options.smtp_host,
            port=options.smtp_port,
            username=options.smtp_username or None,
            password=password,
            timeout=options.smtp_timeout,
            use_tls=options.smtp_security == "ssl",
            start_tls=options.smtp_security == "starttls",
            tls_context=self._tls_context,
            local_hostname=self._local_hostname,
        )
        try:
            await conn.connect()
            if conn.is_ehlo_or_helo_needed:  # now, so SIZE and SMTPUTF8 are known before MAIL
                try:
                    await conn.ehlo()
                except SMTPHeloError:
                    await conn.helo()
        except SMTPResponseException as exc:
            raise RetryableDeliveryError(
                f"SMTP {exc.code} while connecting: {exc.message}",
                code=str(exc.code),
                unavailable=True,
            ) from exc
        except (OSError, SMTPException, ValueError) as exc:  # SMTPNotSupported: no STARTTLS, AUTH
            where = f"{options.smtp_host}:{options.smtp_port}"
            raise RetryableDeliveryError(
                f"cannot connect to {where}: {exc!r}", unavailable=True
            ) from exc
        self._local_hostname = conn.local_hostname
        return conn

    async def _transact(
        self, conn: SMTP, built: BuiltMessage, to: str, payload: bytes, *, reused: bool
    ) -> Receipt:
        """MAIL, RCPT, DATA by hand rather than `sendmail`: only here can a hang-up before the
        payload (retryable) be told from one after it (ambiguous). The addresses were checked
        when the message was built, so they skip `parseaddr` (~50 µs a message)."""
        mail_options = [f"SIZE={len(payload)}".encode()] if conn.supports_extension("size") else []
        encoding = "ascii"
        if built.smtputf8:
            if not conn.supports_extension("smtputf8"):
                raise PermanentDeliveryError("the server does not offer SMTPUTF8 (RFC 6531)")
            mail_options += [b"SMTPUTF8", b"BODY=8BITMIME"]
            encoding = "utf-8"
        sender = f"FROM:<{self._envelope_sender(built.message_id)}>".encode(encoding)
        stage = "MAIL"
        try:
            await _command(conn, b"MAIL", sender, *mail_options, expect={250})
            stage = "RCPT"
            await _command(conn, b"RCPT", f"TO:<{to}>".encode(encoding), expect={250, 251})
            stage = "DATA"
            await _command(conn, b"DATA", expect={354})
            protocol = conn.protocol
            if protocol is None:
                raise SMTPServerDisconnected("Connection lost")
            protocol.write(payload)
            stage = "end of DATA"
            reply = await protocol.read_response(timeout=self.options.smtp_timeout)
        except SMTPResponseException as exc:
            await self._reset(conn)
            raise _refusal(exc.code, exc.message, stage) from exc
        except OSError as exc:  # disconnects and timeouts (aiosmtplib's are OSErrors too)
            conn.close()
            if stage == "end of DATA":
                raise AmbiguousDeliveryError(
                    f"no reply after the message was sent ({exc!r}): it may have been delivered"
                ) from exc
            if reused and stage == "MAIL":
                raise _StaleConnection from exc
            # Before RCPT nothing about this message was said: the server is going away.
            raise RetryableDeliveryError(
                f"connection lost at {stage}: {exc!r}", unavailable=stage == "MAIL"
            ) from exc
        except SMTPException as exc:  # nothing reached the server: a client-side refusal
            conn.close()
            raise RetryableDeliveryError(f"SMTP client error at {stage}: {exc!r}") from exc
        if reply.code != 250:
            if reply.code == 421:  # the server is closing this channel (RFC 5321 3.8)
                conn.close()
            raise _refusal(reply.code, reply.message, "end of DATA")
        return Receipt(
            provider_id=built.message_id, detail={"reply": f"{reply.code} {reply.message}"}
        )

    @staticmethod
    async def _reset(conn: SMTP) -> None:
        """RSET after a refused transaction, so the connection can serve the next one."""
        if not conn.is_connected:
            return
        try:
            await conn.rset()
        except (OSError, SMTPResponseException):
            conn.close()

    async def aclose(self) -> None:
        """QUIT every idle pooled connection."""
        await self._pool.aclose()
