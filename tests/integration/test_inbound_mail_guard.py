"""How much of the listener one client may hold, over real sockets: connections from one
address are capped (421 4.7.0) and their places come back when they close; a session ends at
its deadline however busy the client keeps it, DATA at its own, an idle client at the idle
timeout (421 4.4.2, then the connection is closed); a message being handled is never cut."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.inbound_mail.guard import Limits, client_of
from hub.runtime import Runtime
from hub.services import bounces
from hub.settings import Settings
from tests.conftest import TEST_SECRET
from tests.integration.test_inbound_mail import BOUNCES
from tests.integration.test_inbound_mail_limits import listening

GIVE_UP = 15.0  # seconds: far past every deadline below; a test failing takes at most this


@pytest.fixture
def offline(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime over an empty SQLite file: nothing here reaches the database."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", secret_key=TEST_SECRET)
    runtime = Runtime.build(settings)
    yield runtime
    runtime.close()


class Client:
    """A client talking SMTP by hand: smtplib hides a 421 behind a disconnect."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=GIVE_UP)
        self.reader = self.sock.makefile("rb")

    def reply(self) -> bytes:
        lines = [self.reader.readline()]
        while lines[-1][3:4] == b"-":
            lines.append(self.reader.readline())
        return lines[-1]

    def say(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.reply()

    def until_closed(self, keep_sending: bytes | None, every: float) -> tuple[list[bytes], float]:
        """Send `keep_sending` every `every` seconds (or nothing) until the server closes:
        every reply line read meanwhile, and when the connection closed (monotonic)."""
        self.sock.settimeout(every)
        said = b""
        deadline = time.monotonic() + GIVE_UP
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(4096)
            except TimeoutError:
                if keep_sending is not None:
                    self.sock.sendall(keep_sending)
                continue
            if not chunk:
                return said.splitlines(), time.monotonic()
            said += chunk
        pytest.fail(f"the server never closed the connection; it said {said!r}")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()


def test_one_address_holds_at_most_its_share_of_connections(offline: Runtime) -> None:
    limits = Limits(connections=10, per_client=2)
    with listening(offline, lmtp=False, limits=limits) as port:
        first, second = Client(port), Client(port)
        assert first.reply().startswith(b"220 ")
        assert second.reply().startswith(b"220 ")
        third = Client(port)
        said, _ = third.until_closed(None, 0.1)
        assert said == [b"421 4.7.0 Too many connections from your address, try again later"]
        assert first.say(b"NOOP").startswith(b"250")
        assert first.say(b"QUIT").startswith(b"221")
        first.close()
        again = Client(port)  # the place first held is free again
        assert again.reply().startswith(b"220 ")
        assert again.say(b"NOOP").startswith(b"250")
        for client in (second, third, again):
            client.close()


def test_a_session_ends_at_its_deadline_however_busy_the_client_keeps_it(
    offline: Runtime,
) -> None:
    limits = Limits(per_client=1, idle=5.0, session=1.5)
    with listening(offline, lmtp=False, limits=limits) as port:
        busy = Client(port)
        started = time.monotonic()
        assert busy.reply().startswith(b"220 ")
        said, closed = busy.until_closed(b"NOOP\r\n", 0.2)
        # NOOPs answered all along (the idle timer never ran out), then the goodbye.
        assert said[-1] == b"421 4.4.2 Session too long, closing connection", said
        assert said.count(b"250 OK") >= 4, said
        assert 1.5 <= closed - started < 4.5
        busy.close()
        again = Client(port)  # its place came back with the close
        assert again.reply().startswith(b"220 ")
        again.close()


def test_data_ends_at_its_own_deadline(offline: Runtime) -> None:
    limits = Limits(idle=5.0, session=60.0, data=1.0)
    with listening(offline, lmtp=False, limits=limits) as port:
        slow = Client(port)
        assert slow.reply().startswith(b"220 ")
        assert slow.say(b"EHLO mx.example.net").startswith(b"250 ")
        assert slow.say(b"MAIL FROM:<>").startswith(b"250 ")
        assert slow.say(b"RCPT TO:<" + BOUNCES.encode() + b">").startswith(b"250 ")
        assert slow.say(b"DATA").startswith(b"354 ")
        started = time.monotonic()
        said, closed = slow.until_closed(b"a line of a message that never ends\r\n", 0.1)
        assert said == [b"421 4.4.2 DATA took too long, closing connection"]
        assert 1.0 <= closed - started < 4.0
        slow.close()


def test_an_idle_client_is_told_before_it_is_dropped(offline: Runtime) -> None:
    with listening(offline, lmtp=False, limits=Limits(idle=1.0)) as port:
        idle = Client(port)
        assert idle.reply().startswith(b"220 ")
        assert idle.say(b"EHLO mx.example.net").startswith(b"250 ")
        started = time.monotonic()
        said, closed = idle.until_closed(None, 0.1)
        assert said == [b"421 4.4.2 Idle too long, closing connection"]
        assert 1.0 <= closed - started < 4.0
        idle.close()


def test_a_deadline_never_cuts_a_message_being_handled(
    offline: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Handling outlasts both deadlines: the client still gets its 250, then the goodbye."""
    read = bounces.parse

    def slowly(raw: bytes) -> object:
        time.sleep(2.0)
        return read(raw)

    monkeypatch.setattr(bounces, "parse", slowly)
    limits = Limits(idle=5.0, session=1.0, data=1.0)
    with listening(offline, lmtp=False, limits=limits) as port:
        client = Client(port)
        assert client.reply().startswith(b"220 ")
        assert client.say(b"EHLO mx.example.net").startswith(b"250 ")
        assert client.say(b"MAIL FROM:<>").startswith(b"250 ")
        assert client.say(b"RCPT TO:<" + BOUNCES.encode() + b">").startswith(b"250 ")
        assert client.say(b"DATA").startswith(b"354 ")
        client.sock.sendall(b"Subject: not a report\r\n\r\nHello.\r\n.\r\n")
        said, _ = client.until_closed(None, 0.1)
        assert said == [b"250 2.0.0 OK", b"421 4.4.2 Session too long, closing connection"]
        client.close()


@pytest.mark.parametrize(
    ("peer", "counted_as"),
    [
        (("192.0.2.7", 40112), "192.0.2.7"),
        (("2001:db8:1:2:aaaa::1", 40112, 0, 0), "2001:db8:1:2::/64"),
        (("2001:db8:1:2:bbbb::9", 50000, 0, 0), "2001:db8:1:2::/64"),  # same /64, same client
        (("::ffff:192.0.2.7", 40112, 0, 0), "192.0.2.7"),  # IPv4 on a dual-stack socket
        ("/run/hub/inbound.sock", "/run/hub/inbound.sock"),
    ],
)
def test_connections_count_against_an_ipv4_address_or_an_ipv6_64(
    peer: object, counted_as: str
) -> None:
    assert client_of(peer) == counted_as
