"""EmailChannel against a real aiosmtpd peer on 127.0.0.1, through real aiosmtplib connections."""

# ruff: noqa: RUF001 (Russian text is the point: Cyrillic letters that look Latin are expected)

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
import subprocess
from collections.abc import Coroutine, Iterator
from email.header import decode_header, make_header
from email.utils import parseaddr
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hub.channels.base import (
    AmbiguousDeliveryError,
    ChannelAdapter,
    DeliveryError,
    OutgoingMessage,
    PermanentDeliveryError,
    Receipt,
    RetryableDeliveryError,
)
from hub.channels.email import EmailChannel, SmtpOptions
from hub.domain import Channel, SuppressionReason
from tests.conftest import service_missing
from tests.peers.smtp import SmtpPeer, smtp_peer

T = TypeVar("T")


@pytest.fixture
def peer() -> Iterator[SmtpPeer]:
    with smtp_peer() as started:
        yield started


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def options(peer: SmtpPeer, **overrides: Any) -> SmtpOptions:
    values: dict[str, Any] = {
        "smtp_host": peer.host,
        "smtp_port": peer.port,
        "smtp_timeout": 5,
        "email_from": "Хаб <hub@example.com>",
    }
    return SmtpOptions(_env_file=None, **(values | overrides))  # never a developer's .env


def message(to: str = "ivan@example.ru", key: str = "d1", **fields: Any) -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=1,
        channel=Channel.EMAIL,
        key=key,
        to=to,
        **({"to_name": "Иван Петров", "subject": "Заказ отправлен", "text": "Текст"} | fields),
    )


async def send_then_close(channel: EmailChannel, *messages: OutgoingMessage) -> list[Any]:
    """Send in order; each outcome is a Receipt or the DeliveryError raised."""
    outcomes: list[Any] = []
    try:
        for one in messages:
            try:
                outcomes.append(await channel.send(one))
            except DeliveryError as exc:
                outcomes.append(exc)
    finally:
        await channel.aclose()
    return outcomes


def test_the_channel_is_a_registered_adapter() -> None:
    channel = EmailChannel.from_options(SmtpOptions(_env_file=None))
    assert isinstance(channel, ChannelAdapter)
    assert (EmailChannel.name, EmailChannel.kinds) == ("smtp", frozenset({Channel.EMAIL}))
    assert not SmtpOptions(_env_file=None).configured
    assert SmtpOptions(_env_file=None, smtp_host="mx.example").configured


def test_russian_mail_arrives_intact(peer: SmtpPeer) -> None:
    channel = EmailChannel(options(peer))
    sent = message(
        to_name="Иван Петрович Сидоров-Длиннофамильный",
        subject="Ваш заказ №4521 отправлен 🚚 — ожидайте доставку в течение трёх дней",
        text="Здравствуйте!\n.\nFrom: склад\n",
        html="<p>Здравствуйте!</p>",
        unsubscribe_url="https://hub.example/u/tok",
        unsubscribe_mailto="unsubscribe@hub.example",
    )
    [receipt] = run(send_then_close(channel, sent))
    assert isinstance(receipt, Receipt)
    [got] = peer.wait_for(1)
    assert (got.mail_from, got.rcpt_tos) == ("hub@example.com", ("ivan@example.ru",))
    parsed = got.message
    assert receipt.provider_id == parsed["Message-ID"] == "<d1@example.com>"
    assert receipt.detail is not None
    assert receipt.detail["reply"].startswith("250 2.0.0 OK queued as")
    assert parsed["Subject"] == sent.subject
    raw_to = next(value for name, value in parsed.raw_items() if name == "To")
    assert str(make_header(decode_header(parseaddr(raw_to)[0]))) == sent.to_name
    plain, html = parsed.get_body(("plain",)), parsed.get_body(("html",))
    assert plain is not None
    assert html is not None
    assert plain.get_content().replace("\r\n", "\n") == sent.text
    assert html.get_content() == sent.html
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_with_a_bounce_mailbox_the_envelope_sender_names_the_message(peer: SmtpPeer) -> None:
    channel = EmailChannel(options(peer, email_bounce_address="bounces@example.com"))
    [receipt] = run(send_then_close(channel, message(key="hub-12-345")))
    assert isinstance(receipt, Receipt)
    [got] = peer.wait_for(1)
    assert got.mail_from == "bounces+hub-12-345@example.com"  # VERP
    assert got.message["From"].addresses[0].addr_spec == "hub@example.com"  # unchanged
    for bad in ("no-at-sign", "bounces+tag@example.com", "почта@example.com"):
        with pytest.raises(ValueError, match="email_bounce_address"):
            options(peer, email_bounce_address=bad)


def test_the_pool_reuses_at_most_pool_size_connections(peer: SmtpPeer) -> None:
    channel = EmailChannel(options(peer, smtp_pool_size=4))

    async def burst() -> list[Receipt]:
        try:
            batch = (channel.send(message(f"user{i}@example.com", f"k{i}")) for i in range(200))
            return await asyncio.gather(*batch)
        finally:
            await channel.aclose()

    receipts = run(burst())
    assert len({r.provider_id for r in receipts}) == 200
    assert len(peer.wait_for(200)) == 200
    assert channel.connections_opened == peer.connections <= 4
    assert peer.quits == peer.connections  # aclose() said goodbye on every pooled connection


@pytest.mark.parametrize(
    ("at", "reply", "error", "suppress"),
    [
        ("rcpt", "421 4.3.2 Service shutting down", RetryableDeliveryError, None),
        ("rcpt", "451 4.3.0 Try again later", RetryableDeliveryError, None),
        ("rcpt", "550 No such user", PermanentDeliveryError, SuppressionReason.HARD_BOUNCE),
        ("rcpt", "553 5.1.3 Bad address syntax", PermanentDeliveryError, "hard_bounce"),
        ("rcpt", "550 5.7.1 Relaying denied", PermanentDeliveryError, None),
        ("rcpt", "552 5.2.2 Mailbox full", PermanentDeliveryError, None),
        ("data", "451 4.7.1 Greylisted", RetryableDeliveryError, None),
        ("data", "554 5.7.1 Message content rejected", PermanentDeliveryError, None),
        ("data", "550 5.1.1 User unknown", PermanentDeliveryError, SuppressionReason.HARD_BOUNCE),
        ("data", "550 Spam detected", PermanentDeliveryError, None),
        ("mail", "451 4.3.0 Sender check failed", RetryableDeliveryError, None),
        ("mail", "550 5.1.8 Sender domain unknown", PermanentDeliveryError, None),
    ],
)
def test_replies_become_delivery_errors(
    peer: SmtpPeer, at: Any, reply: str, error: type[DeliveryError], suppress: Any
) -> None:
    address = "hub@example.com" if at == "mail" else "victim@example.ru"
    peer.script(address, at=at, reply=reply, times=1)
    channel = EmailChannel(options(peer, smtp_pool_size=1))
    failed, after = run(send_then_close(channel, message("victim@example.ru"), message(key="d2")))
    assert type(failed) is error
    assert failed.code == reply[:3]
    assert reply.split(" ", 1)[1] in failed.message  # the server's own words, for the timeline
    assert getattr(failed, "suppress", None) == suppress
    assert isinstance(after, Receipt)  # the next message still goes through
    [delivered] = peer.wait_for(1)
    assert delivered.rcpt_tos == ("ivan@example.ru",)
    if not reply.startswith("421"):  # 421 closes the channel; other refusals keep it
        assert peer.connections == 1
        assert peer.rsets == (0 if at == "data" else 1)  # a refused DATA ended the transaction


def test_a_hang_up_after_the_payload_is_ambiguous(peer: SmtpPeer) -> None:
    peer.script("victim@example.ru", at="data", drop=True)
    channel = EmailChannel(options(peer))
    failed, after = run(send_then_close(channel, message("victim@example.ru"), message()))
    assert isinstance(failed, AmbiguousDeliveryError)
    assert "may have been delivered" in failed.message
    assert isinstance(after, Receipt)
    assert [r.rcpt_tos for r in peer.wait_for(1)] == [("ivan@example.ru",)]


def test_no_reply_within_the_timeout_after_the_payload_is_ambiguous(peer: SmtpPeer) -> None:
    peer.script("slow@example.ru", at="data", delay=10)  # cancelled when we hang up
    channel = EmailChannel(options(peer, smtp_timeout=1))
    [failed] = run(send_then_close(channel, message("slow@example.ru")))
    assert isinstance(failed, AmbiguousDeliveryError)
    assert "Timed out" in failed.message


def test_a_hang_up_before_the_payload_is_retryable(peer: SmtpPeer) -> None:
    peer.script("victim@example.ru", at="rcpt", drop=True)
    channel = EmailChannel(options(peer))
    failed, after = run(send_then_close(channel, message("victim@example.ru"), message()))
    assert isinstance(failed, RetryableDeliveryError)
    assert "at RCPT" in failed.message
    assert isinstance(after, Receipt)


def test_a_pooled_connection_found_dead_is_replaced_at_once(peer: SmtpPeer) -> None:
    channel = EmailChannel(options(peer))

    async def pair(first: int) -> list[Receipt]:
        return await asyncio.gather(*(channel.send(message(key=f"d{first + i}")) for i in (0, 1)))

    async def scenario() -> list[Any]:
        outcomes: list[Any] = [*await pair(0)]  # two connections now idle in the pool
        peer.script("hub@example.com", at="mail", drop=True, times=1)  # one of them dies
        outcomes.append(await channel.send(message(key="d2")))
        outcomes += await pair(3)
        await channel.aclose()
        return outcomes

    outcomes = run(scenario())
    assert all(isinstance(outcome, Receipt) for outcome in outcomes)
    assert len(peer.wait_for(5)) == 5
    assert channel.connections_opened == 3  # the dead one replaced; the healthy one kept


def test_an_unreachable_server_is_retryable() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nobody listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    channel = EmailChannel(SmtpOptions(_env_file=None, smtp_host="127.0.0.1", smtp_port=port))
    [failed] = run(send_then_close(channel, message()))
    assert isinstance(failed, RetryableDeliveryError)
    assert f"127.0.0.1:{port}" in failed.message


def test_an_unconfigured_channel_refuses_without_connecting() -> None:
    [failed] = run(send_then_close(EmailChannel(SmtpOptions(_env_file=None)), message()))
    assert isinstance(failed, RetryableDeliveryError)
    assert "HUB_SMTP_HOST" in failed.message


def test_login_over_plain_text() -> None:
    with smtp_peer(users={"hub": "s3cret"}) as peer:
        good = EmailChannel(options(peer, smtp_username="hub", smtp_password="s3cret"))
        bad = EmailChannel(options(peer, smtp_username="hub", smtp_password="wrong"))
        [receipt] = run(send_then_close(good, message()))
        [failed] = run(send_then_close(bad, message()))
        assert isinstance(receipt, Receipt)
        assert peer.wait_for(1)[0].login == "hub"
        assert isinstance(failed, RetryableDeliveryError)  # an operator's fix, not the message's
        assert failed.code == "535"
        assert "wrong" not in failed.message


def test_internationalised_address_uses_smtputf8(peer: SmtpPeer) -> None:
    [receipt] = run(send_then_close(EmailChannel(options(peer)), message("иван@пример.рф")))
    assert isinstance(receipt, Receipt)
    [got] = peer.wait_for(1)
    assert got.rcpt_tos == ("иван@пример.рф",)
    assert "SMTPUTF8" in got.mail_options
    assert "To: Иван Петров <иван@пример.рф>" in got.data.decode("utf-8")


def test_internationalised_address_without_server_support_is_permanent() -> None:
    with smtp_peer(smtputf8=False) as peer:
        [failed] = run(send_then_close(EmailChannel(options(peer)), message("иван@пример.рф")))
    assert isinstance(failed, PermanentDeliveryError)
    assert "SMTPUTF8" in failed.message


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        service_missing("openssl (to make a self-signed certificate for STARTTLS)", "not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_required_starttls_with_a_trusted_certificate(certificate: tuple[Path, Path]) -> None:
    cert, key = certificate
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert, key)
    with smtp_peer(tls_context=server, require_tls=True) as peer:
        trusting = EmailChannel(
            options(peer, smtp_security="starttls"),
            tls_context=ssl.create_default_context(cafile=str(cert)),
        )
        [receipt] = run(send_then_close(trusting, message()))
        assert isinstance(receipt, Receipt)
        assert peer.wait_for(1)[0].tls
        untrusting = EmailChannel(options(peer, smtp_security="starttls"))
        [failed] = run(send_then_close(untrusting, message()))
        assert isinstance(failed, RetryableDeliveryError)  # a self-signed cert is not trusted
        assert "CERTIFICATE_VERIFY_FAILED" in failed.message
