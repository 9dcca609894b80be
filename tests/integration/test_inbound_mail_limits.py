"""The inbound mail listener's refusals and failures over real sockets: it never relays (550
5.1.1), caps recipients (452) and size (552 5.3.4), answers LMTP per recipient, asks the
sender to retry (451 4.3.0) when the database fails, and `hub inbound-mail --stdin` exits with
the sysexits codes an MTA's pipe transport reads."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import smtplib
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hub.inbound_mail.guard import Limits
from hub.inbound_mail.listener import MAX_RECIPIENTS, Listener, ListenerOptions
from hub.inbound_mail.mailboxes import Mailboxes
from hub.preferences.tokens import LinkSigner, Purpose
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import TEST_SECRET
from tests.e2e.test_serve import HUB, free_port
from tests.integration.test_inbound_mail import (
    BOUNCES,
    MAX_BYTES,
    UNSUBSCRIBE,
    Served,
    hub_environment,
    mailto_token,
    plain_mail,
    serving,
)


@pytest.fixture
def served(tmp_path: Path, sqlite_template: Path) -> Iterator[Served]:
    path = tmp_path / "hub.db"
    path.write_bytes(sqlite_template.read_bytes())
    with serving(tmp_path, f"sqlite:///{path}") as running:
        yield running


def test_only_hubs_two_mailboxes_are_accepted_so_it_never_relays(served: Served) -> None:
    with served.mail() as inbound:
        inbound.ehlo()
        assert inbound.mail("someone@elsewhere.example")[0] == 250
        for stranger in (
            "postmaster@example.com",
            "bounces@elsewhere.example",  # the right name at another domain
            "ann@gmail.example",  # a relay attempt
            "bounces-hub@example.com",
            "notanaddress",
        ):
            code, said = inbound.rcpt(stranger)
            assert code in {550, 553}, (stranger, code, said)
            if code == 550:
                assert said.startswith(b"5.1.1"), said
        for ours in ("BOUNCES@Example.COM", "bounces+hub-1-2-x@example.com", UNSUBSCRIBE):
            assert inbound.rcpt(ours) == (250, b"2.1.5 OK"), ours
        inbound.rset()
        inbound.mail("")
        answers = [inbound.rcpt(UNSUBSCRIBE)[0] for _ in range(MAX_RECIPIENTS + 1)]
        assert answers[:MAX_RECIPIENTS] == [250] * MAX_RECIPIENTS
        assert answers[MAX_RECIPIENTS] == 452


def test_a_message_over_the_size_limit_is_refused_with_552_5_3_4(served: Served) -> None:
    big = plain_mail("a@example.net", UNSUBSCRIBE, "unsubscribe", "x" * 70 + "\n") * (
        MAX_BYTES // 70
    )
    with served.mail() as inbound:
        # Declared up front (SIZE=, which smtplib sends): refused at MAIL FROM.
        with pytest.raises(smtplib.SMTPSenderRefused) as declared:
            inbound.sendmail("a@example.net", [UNSUBSCRIBE], big)
        assert declared.value.smtp_code == 552
        assert declared.value.smtp_error.startswith(b"5.3.4")
        # Not declared: refused after DATA, and the session goes on.
        inbound.rset()
        inbound.mail("a@example.net")
        inbound.rcpt(UNSUBSCRIBE)
        code, said = inbound.data(big)
        assert code == 552
        assert said.startswith(b"5.3.4")
        assert inbound.noop()[0] == 250


def test_garbage_to_the_bounce_mailbox_is_accepted_and_changes_nothing(served: Served) -> None:
    garbage = b"\x00\xff not a message at all\r\n--\r\nContent-Type: multipart/report\r\n"
    with served.mail() as inbound:
        assert inbound.sendmail("", [BOUNCES], garbage) == {}
        assert inbound.sendmail("", [BOUNCES], b"Subject: auto reply\r\n\r\nI am away.\r\n") == {}
    unmatched = served.api.get("/v1/bounces/unmatched").json()["items"]
    assert unmatched == []


def _lmtp_exchange(port: int, commands: list[bytes], *, replies_after_data: int) -> list[bytes]:
    """Talk LMTP by hand: smtplib reads one reply after DATA, LMTP sends one per recipient."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        reader = sock.makefile("rb")

        def reply() -> bytes:
            lines = [reader.readline()]
            while lines[-1][3:4] == b"-":
                lines.append(reader.readline())
            return b"".join(lines)

        said = [reply()]  # the greeting
        for command in commands:
            sock.sendall(command)
            said.append(reply())
        said.extend(reply() for _ in range(replies_after_data - 1))
        return said


def test_lmtp_mode_answers_for_each_recipient(tmp_path: Path, sqlite_template: Path) -> None:
    path = tmp_path / "hub.db"
    path.write_bytes(sqlite_template.read_bytes())
    with serving(tmp_path, f"sqlite:///{path}", HUB_INBOUND_MAIL_PROTOCOL="lmtp") as served:
        said = _lmtp_exchange(
            served.inbound,
            [
                b"LHLO mx.example.net\r\n",
                b"MAIL FROM:<>\r\n",
                b"RCPT TO:<" + BOUNCES.encode() + b">\r\n",
                b"RCPT TO:<stranger@example.com>\r\n",
                b"RCPT TO:<" + UNSUBSCRIBE.encode() + b">\r\n",
                b"DATA\r\n",
                b"Subject: hello\r\n\r\nNot a report.\r\n.\r\n",
            ],
            replies_after_data=2,
        )
    assert said[0].startswith(b"220 ")
    assert said[1].startswith(b"250-")  # LHLO
    assert said[3].startswith(b"250 2.1.5"), said
    assert said[4].startswith(b"550 5.1.1"), said
    assert said[5].startswith(b"250 2.1.5"), said
    assert said[6].startswith(b"354"), said
    assert said[7:] == [b"250 2.0.0 OK\r\n", b"250 2.0.0 OK\r\n"]
    assert "inbound mail: lmtp://127.0.0.1:" in served.output[0]


@contextlib.contextmanager
def listening(runtime: Runtime, *, lmtp: bool, limits: Limits | None = None) -> Iterator[int]:
    """The listener on its own event loop thread, on a free port."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    options = ListenerOptions(
        Mailboxes(bounce=BOUNCES, unsubscribe=UNSUBSCRIBE),
        host="127.0.0.1",
        port=0,
        lmtp=lmtp,
        max_bytes=MAX_BYTES,
        limits=limits or Limits(),
    )
    listener = Listener(runtime, options)
    asyncio.run_coroutine_threadsafe(listener.start(), loop).result(10)
    try:
        yield listener.port
    finally:
        asyncio.run_coroutine_threadsafe(listener.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def broken_database(tmp_path: Path) -> Iterator[Runtime]:
    """A runtime whose database has no tables: every query fails as a database error does."""
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'empty.db'}", secret_key=TEST_SECRET)
    runtime = Runtime.build(settings)
    yield runtime
    runtime.close()


def _good_token(settings: Settings) -> str:
    signer = LinkSigner(settings.link_secrets(), max_age=dt.timedelta(days=1))
    return signer.sign(Purpose.UNSUBSCRIBE, 1, "news", link_key="k")


def test_a_database_failure_asks_the_sender_to_retry_with_451(broken_database: Runtime) -> None:
    token = _good_token(broken_database.settings)
    message = plain_mail("ann@example.com", UNSUBSCRIBE, f"unsubscribe {token}")
    with listening(broken_database, lmtp=False) as port, smtplib.SMTP("127.0.0.1", port) as smtp:
        with pytest.raises(smtplib.SMTPDataError) as failed:
            smtp.sendmail("ann@example.com", [UNSUBSCRIBE], message)
        assert failed.value.smtp_code == 451
        said = failed.value.smtp_error
        assert isinstance(said, bytes)
        assert said.startswith(b"4.3.0")


def test_lmtp_retries_only_the_recipient_that_failed(broken_database: Runtime) -> None:
    token = _good_token(broken_database.settings)
    with listening(broken_database, lmtp=True) as port:
        said = _lmtp_exchange(
            port,
            [
                b"LHLO mx.example.net\r\n",
                b"MAIL FROM:<ann@example.com>\r\n",
                b"RCPT TO:<" + BOUNCES.encode() + b">\r\n",  # not a report: no database needed
                b"RCPT TO:<unsubscribe+" + token.encode() + b"@example.com>\r\n",
                b"DATA\r\n",
                b"Subject: stop\r\n\r\nPlease.\r\n.\r\n",
            ],
            replies_after_data=2,
        )
    assert said[-2:] == [
        b"250 2.0.0 OK\r\n",
        b"451 4.3.0 Temporary failure, please try again later\r\n",
    ]


def _pipe(
    tmp_path: Path, recipient: str, message: bytes, **env: str
) -> subprocess.CompletedProcess[bytes]:
    database = env.pop("database", f"sqlite:///{tmp_path / 'hub.db'}")
    return subprocess.run(
        [HUB, "inbound-mail", "--stdin", "--recipient", recipient],
        cwd=tmp_path,
        env=hub_environment(tmp_path, database, **env),
        input=message,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_the_pipe_reader_exits_with_sysexits_codes(served: Served) -> None:
    """0 done (and the unsubscribe really happens), 67 no such mailbox, 65 too big, 75 when
    the database is away."""
    _, mail = served.send_news("ann", "ann@example.com")
    token = mailto_token(mail)
    database = served.env["HUB_DATABASE_URL"]
    message = plain_mail("ann@example.com", UNSUBSCRIBE, f"unsubscribe {token}")
    done = _pipe(served.cwd, UNSUBSCRIBE, message, database=database)
    assert done.returncode == 0, done.stderr
    assert served.status("ann") == "unsubscribed"
    assert token.encode() not in done.stderr

    unknown = _pipe(served.cwd, "postmaster@example.com", message, database=database)
    assert unknown.returncode == 67, unknown.stderr
    too_big = _pipe(served.cwd, BOUNCES, b"x" * (MAX_BYTES + 1), database=database)
    assert too_big.returncode == 65, too_big.stderr
    away = _pipe(
        served.cwd, BOUNCES, message, database="postgresql+psycopg://nobody@127.0.0.1:9/none"
    )
    assert away.returncode == 75, away.stderr
    nothing = _pipe(served.cwd, BOUNCES, b"Subject: not a report\r\n\r\nhi\r\n", database=database)
    assert nothing.returncode == 0, nothing.stderr


def test_the_standalone_listener_needs_a_mailbox(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    env["HUB_DATABASE_URL"] = f"sqlite:///{tmp_path / 'hub.db'}"
    refused = subprocess.run(
        [HUB, "inbound-mail", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 1
    assert "HUB_EMAIL_BOUNCE_ADDRESS or HUB_UNSUBSCRIBE_MAILTO" in refused.stderr


def test_connections_past_the_limit_are_told_to_come_back(broken_database: Runtime) -> None:
    with listening(broken_database, lmtp=False, limits=Limits(connections=2)) as port:
        first, second = (smtplib.SMTP("127.0.0.1", port, timeout=30) for _ in range(2))
        with socket.create_connection(("127.0.0.1", port), timeout=30) as third:
            greeting = third.makefile("rb").readline()
            assert greeting.startswith(b"421 4.3.2"), greeting
        assert first.noop()[0] == 250
        assert second.noop()[0] == 250
        first.quit()
        second.quit()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as again:  # room again
            assert again.noop()[0] == 250


def test_hub_inbound_mail_runs_the_listener_alone_until_sigterm(
    tmp_path: Path, sqlite_template: Path
) -> None:
    path = tmp_path / "hub.db"
    path.write_bytes(sqlite_template.read_bytes())
    port = free_port()
    process = subprocess.Popen(
        [HUB, "inbound-mail", "--port", str(port), "--lmtp"],
        cwd=tmp_path,
        env=hub_environment(tmp_path, f"sqlite:///{path}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                said = _lmtp_exchange(port, [b"LHLO mx.example.net\r\n"], replies_after_data=1)
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.1)
        assert said[0].startswith(b"220 ")
        assert said[1].startswith(b"250-")
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0]
    assert process.returncode == 0, output
    assert f"inbound mail: lmtp://127.0.0.1:{port} ({BOUNCES}, {UNSUBSCRIBE})" in output
