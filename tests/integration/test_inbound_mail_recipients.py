"""A message is read once, however many recipients it has, over a real socket on SQLite and
PostgreSQL: the bounce mailbox's recipients share one reading, stamped with each of their
addresses, and one record; the unsubscribe mailbox's share the subject and do each token once.
The bounce mailbox takes at most MAX_BOUNCE_RECIPIENTS per message, the rest on their own cap."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.db.models import UnmatchedReport
from hub.inbound_mail.listener import MAX_BOUNCE_RECIPIENTS
from hub.runtime import Runtime
from hub.services import bounces, unsubscribes
from tests.bounce_mail import dsn
from tests.integration.test_inbound_mail import UNSUBSCRIBE, plain_mail
from tests.integration.test_inbound_mail_limits import _lmtp_exchange, listening
from tests.integration.test_inbound_mail_unsubscribe import _person, _state, _token


def _counted(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[tuple[Any, ...]]:
    """Each call of module.name (which still runs), by its arguments."""
    calls: list[tuple[Any, ...]] = []
    real: Callable[..., Any] = getattr(module, name)

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, counting)
    return calls


def _lmtp(
    port: int, recipients: list[str], message: bytes, *, sender: str = "", refused: int = 0
) -> list[bytes]:
    """The replies to RCPT TO for each recipient, to DATA, then after the message (one per
    accepted recipient: all but `refused`)."""
    hello = [b"LHLO mx.example.net\r\n", b"MAIL FROM:<" + sender.encode() + b">\r\n"]
    rcpts = [b"RCPT TO:<" + r.encode() + b">\r\n" for r in recipients]
    data = [b"DATA\r\n", message.replace(b"\r\n.", b"\r\n..") + b".\r\n"]
    said = _lmtp_exchange(
        port, [*hello, *rcpts, *data], replies_after_data=len(recipients) - refused
    )
    return said[3:]  # past the greeting, LHLO and MAIL


def test_a_report_to_many_bounce_addresses_is_read_and_kept_once(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = _counted(monkeypatch, bounces, "parse")
    verp = [f"bounces+hub-999-{n}@example.com" for n in range(1, MAX_BOUNCE_RECIPIENTS)]
    recipients = [*verp, verp[0]]  # the same address twice is stamped once
    report = dsn("ann@example.com", "<a@elsewhere.example>", to=verp[0])
    with listening(runtime, lmtp=True) as port:
        said = _lmtp(port, recipients, report.replace("\n", "\r\n").encode())
    assert said[: len(recipients)] == [b"250 2.1.5 OK\r\n"] * len(recipients)
    assert said[len(recipients) + 1 :] == [b"250 2.0.0 OK\r\n"] * len(recipients)
    (read,) = parsed
    stamped = b"".join(b"X-Original-To: " + a.encode() + b"\r\n" for a in verp)
    assert read[0].startswith(stamped + b"From: MAILER-DAEMON")
    with runtime.reads() as session:
        kept = session.scalars(select(UnmatchedReport)).all()
    assert [(k.kind, k.recipients) for k in kept] == [("hard_bounce", "ann@example.com")]


def test_the_bounce_mailbox_takes_at_most_its_cap_of_recipients_per_message(
    runtime: Runtime,
) -> None:
    extra = [f"bounces+hub-1-{n}@example.com" for n in range(MAX_BOUNCE_RECIPIENTS + 1)]
    with listening(runtime, lmtp=True) as port:
        message = b"Subject: hello\r\n\r\nNot a report.\r\n"
        said = _lmtp(port, [*extra, UNSUBSCRIBE], message, refused=1)
    accepted = [b"250 2.1.5 OK\r\n"] * MAX_BOUNCE_RECIPIENTS
    too_many = b"452 4.5.3 Too many recipients\r\n"
    # The unsubscribe mailbox, after, still has room.
    assert said[: len(extra) + 1] == [*accepted, too_many, b"250 2.1.5 OK\r\n"]
    handled = MAX_BOUNCE_RECIPIENTS + 1
    assert said[-handled:] == [b"250 2.0.0 OK\r\n"] * handled
    with runtime.reads() as session:
        assert session.scalar(select(func.count()).select_from(UnmatchedReport)) == 0


def test_unsubscribe_recipients_share_the_subject_and_do_each_token_once(
    client: TestClient,
    auth: dict[str, str],
    runtime: Runtime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _person(client, auth, "ann")
    done = _counted(monkeypatch, unsubscribes, "unsubscribe")
    everything = f"unsubscribe+{_token(runtime, 'ann', None)}@example.com"
    recipients = [UNSUBSCRIBE, everything, UNSUBSCRIBE, everything]
    offers = _token(runtime, "ann", "offers")
    message = plain_mail("ann@example.com", UNSUBSCRIBE, f"Re: unsubscribe {offers}")
    with listening(runtime, lmtp=True) as port:
        said = _lmtp(port, recipients, message, sender="ann@example.com")
    assert said[-len(recipients) :] == [b"250 2.0.0 OK\r\n"] * len(recipients)
    assert len(done) == 2  # the subject's token once, the address's once
    assert _state(client, auth, "ann") == {"offers": "unsubscribed", "security": "subscribed"}
    preferences = client.get("/v1/contacts/ann/preferences", headers=auth).json()
    assert preferences["unsubscribed_all"] is True
