"""SmtpPeer: a real aiosmtpd server on 127.0.0.1 that records what it accepts and fails on cue."""

from __future__ import annotations

import asyncio
import contextlib
import email.message
import email.policy
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

Stage = Literal["mail", "rcpt", "data"]
_PARSER = BytesParser(policy=email.policy.default)


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted transaction, as the server saw it."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes  # the DATA payload, dot-stuffing removed, CRLF kept
    mail_options: tuple[str, ...]
    login: str | None  # the AUTH user, when the client logged in
    tls: bool  # whether the transaction ran over TLS

    @property
    def message(self) -> email.message.EmailMessage:
        parsed = _PARSER.parsebytes(self.data)
        assert isinstance(parsed, email.message.EmailMessage)
        return parsed


@dataclass(slots=True)
class Fault:
    """What the peer does for a scripted address at one stage, `times` times (None: always).

    `delay` comes first; then `drop` closes the connection without a reply, or `reply` answers
    with that line ("421 4.3.2 Try later"); with neither, the stage proceeds normally.
    """

    stage: Stage = "rcpt"
    reply: str | None = None
    drop: bool = False
    delay: float = 0.0
    times: int | None = None
    hits: int = field(default=0, init=False)


class _Handler:
    """aiosmtpd hooks; they run on the peer's own thread and event loop."""

    def __init__(self, peer: SmtpPeer) -> None:
        self.peer = peer

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = await self.peer.misbehave(server, "mail", [address])
        if answer is None:
            envelope.mail_from = address
            envelope.mail_options.extend(options)
            return "250 OK"
        return answer

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        answer = await self.peer.misbehave(server, "rcpt", [address])
        if answer is None:
            envelope.rcpt_tos.append(address)
            envelope.rcpt_options.extend(options)
            return "250 OK"
        return answer

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.peer.count("rsets")
        return "250 OK"

    async def handle_QUIT(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.peer.count("quits")
        return "221 Bye"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        answer = await self.peer.misbehave(server, "data", envelope.rcpt_tos)
        if answer is not None:
            return answer
        auth = session.auth_data
        received = Received(
            mail_from=envelope.mail_from or "",
            rcpt_tos=tuple(envelope.rcpt_tos),
            data=envelope.original_content or b"",
            mail_options=tuple(envelope.mail_options),
            login=auth.login.decode() if isinstance(auth, LoginPassword) else None,
            tls=session.ssl is not None,
        )
        return f"250 2.0.0 OK queued as {self.peer.record(received)}"


class _Controller(Controller):
    """Counts connections, and learns its port from the bound socket (port 0: a free one)."""

    def __init__(self, peer: SmtpPeer, **kwargs: Any) -> None:
        super().__init__(_Handler(peer), hostname="127.0.0.1", port=0, **kwargs)
        self.peer = peer

    def factory(self) -> SMTP:
        self.peer.count("connections")
        smtp: SMTP = super().factory()  # type: ignore[no-untyped-call]
        return smtp

    def _trigger_server(self) -> None:
        assert isinstance(self.server, asyncio.Server)
        self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


class SmtpPeer:
    """A scriptable SMTP server: `with SmtpPeer() as peer: ...peer.port...`.

    `users` turns on AUTH PLAIN/LOGIN over plain text; `tls_context` offers STARTTLS, and
    `require_tls` refuses mail without it.
    """

    def __init__(
        self,
        *,
        users: dict[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
        require_tls: bool = False,
        smtputf8: bool = True,
        keep: bool = True,
    ) -> None:
        self.lock = threading.Lock()
        self.keep = keep  # False: count messages, keep only their Message-IDs (benchmarks)
        self.count_received = 0
        self.message_ids: list[bytes] = []
        self.connections = 0  # opened by clients
        self.rsets = 0
        self.quits = 0
        self._arrived = threading.Condition(self.lock)
        self._received: list[Received] = []
        self._faults: dict[str, list[Fault]] = {}
        self.users = users
        kwargs: dict[str, Any] = {"enable_SMTPUTF8": smtputf8, "timeout": 30}
        if users is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False)
        if tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=require_tls)
        self._controller = _Controller(self, **kwargs)
        self.host = "127.0.0.1"
        self.port = 0

    def start(self) -> SmtpPeer:
        self._controller.start()
        self.port = self._controller.port
        with self.lock:
            self.connections = 0  # the controller's own readiness probe is not a client
        return self

    def count(self, counter: Literal["connections", "rsets", "quits"]) -> None:
        with self.lock:
            setattr(self, counter, getattr(self, counter) + 1)

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpPeer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def script(
        self,
        address: str,
        *,
        at: Stage = "rcpt",
        reply: str | None = None,
        drop: bool = False,
        delay: float = 0.0,
        times: int | None = None,
    ) -> None:
        """Misbehave for `address` ("*": anyone) at MAIL (matched on the sender), RCPT, or the
        end of DATA (matched on the recipients)."""
        fault = Fault(stage=at, reply=reply, drop=drop, delay=delay, times=times)
        with self.lock:
            self._faults.setdefault(address.lower(), []).append(fault)

    def faults_hit(self) -> int:
        """How many times the scripted faults have answered so far."""
        with self.lock:
            return sum(f.hits for faults in self._faults.values() for f in faults)

    def clear(self) -> None:
        """Forget every script and every received message."""
        with self.lock:
            self._faults.clear()
            self._received.clear()

    @property
    def received(self) -> list[Received]:
        with self.lock:
            return list(self._received)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Block until at least `count` messages arrived; AssertionError after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._arrived:
            while len(self._received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{len(self._received)} of {count} messages arrived")
                self._arrived.wait(left)
            return list(self._received)

    def record(self, received: Received) -> int:
        with self._arrived:
            self.count_received += 1
            if self.keep:
                self._received.append(received)
            else:
                self.message_ids.append(_message_id(received.data))
            self._arrived.notify_all()
            return self.count_received

    def _take_fault(self, stage: Stage, addresses: list[str]) -> Fault | None:
        with self.lock:
            for address in [*addresses, "*"]:
                for fault in self._faults.get(address.lower(), []):
                    if fault.stage == stage and (fault.times is None or fault.hits < fault.times):
                        fault.hits += 1
                        return fault
        return None

    async def misbehave(self, server: SMTP, stage: Stage, addresses: list[str]) -> str | None:
        """The scripted answer for this stage, or None to carry on as a good server."""
        fault = self._take_fault(stage, addresses)
        if fault is None:
            return None
        if fault.delay:
            await asyncio.sleep(fault.delay)
        if fault.drop:
            assert isinstance(server.transport, asyncio.Transport)
            server.transport.abort()  # no reply, and no later write can slip out either
            await asyncio.sleep(3600)  # aiosmtpd cancels this handler on connection_lost
        return fault.reply

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.users is not None
            and self.users.get(data.login.decode()) == data.password.decode()
        )
        return AuthResult(
            success=ok, handled=False, auth_data=data if ok else None
        )  # 535 if not ok


def _message_id(data: bytes) -> bytes:
    start = data.find(b"\r\nMessage-ID:")
    return data[start + 13 : data.find(b"\r\n", start + 2)].strip() if start >= 0 else b""


@contextlib.contextmanager
def smtp_peer(**kwargs: Any) -> Iterator[SmtpPeer]:
    """A started peer for the length of a `with` block (wrap it in a fixture where needed)."""
    peer = SmtpPeer(**kwargs).start()
    try:
        yield peer
    finally:
        peer.stop()


def main() -> None:
    """Serve until stdin closes: `python -m tests.peers.smtp` prints {"host", "port"} first.

    For benchmarks it keeps no message bodies; on stdin's end it prints how many messages
    arrived and how many Message-IDs arrived more than once.
    """
    import json
    import sys

    with SmtpPeer(keep=False) as peer:
        print(json.dumps({"host": peer.host, "port": peer.port}), flush=True)
        sys.stdin.read()
        with peer.lock:
            ids = list(peer.message_ids)
        print(
            json.dumps({"received": len(ids), "duplicates": len(ids) - len(set(ids))}), flush=True
        )


if __name__ == "__main__":
    main()
