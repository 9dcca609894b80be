"""The e-mail channel's EHLO name and DKIM signature, as a real aiosmtpd server receives them."""

# ruff: noqa: RUF001 (Russian text is the point)

from __future__ import annotations

import asyncio
import base64
import re
import shutil
import socket
import subprocess
import threading
import timeit
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dkim
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from pydantic import ValidationError

from hub.channel_config import channel_options
from hub.channels.base import OutgoingMessage
from hub.channels.email import EmailChannel, SmtpOptions
from hub.channels.email.dkim import DkimSigner
from hub.channels.email.smtp import default_helo_name
from hub.domain import Channel
from hub.settings import Settings
from tests.conftest import service_missing

SELECTOR = "hub2026"
DOMAIN = "example.com"


@dataclass
class Greeted:
    """What a test server saw: the EHLO/HELO name and the DATA bytes of each transaction."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    received: list[tuple[str, bytes]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self.lock:
            self.received.append((session.host_name or "", envelope.original_content or b""))
        return "250 OK"


@pytest.fixture
def server() -> Iterator[tuple[Greeted, int]]:
    with socket.socket() as probe:  # a free port; aiosmtpd's Controller wants a number
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    greeted = Greeted()
    controller = Controller(greeted, hostname="127.0.0.1", port=port, enable_SMTPUTF8=True)
    controller.start()  # type: ignore[no-untyped-call]
    try:
        yield greeted, port
    finally:
        controller.stop()  # type: ignore[no-untyped-call]


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        service_missing("openssl", "not installed")
    path = tmp_path_factory.mktemp("dkim") / "hub.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(path), "2048"], check=True, capture_output=True
    )
    return path


def txt_record(key_file: Path) -> bytes:
    """The TXT record docs/deployment.md tells operators to publish, made the same way."""
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key_file), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def dns_for(record: bytes) -> Any:
    def lookup(name: bytes, timeout: int = 5) -> bytes | None:
        return record if name == f"{SELECTOR}._domainkey.{DOMAIN}.".encode() else None

    return lookup


def options(port: int, **overrides: Any) -> SmtpOptions:
    values: dict[str, Any] = {
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_timeout": 5,
        "email_from": f"Хаб <hub@{DOMAIN}>",
    }
    return SmtpOptions(_env_file=None, **(values | overrides))  # never a developer's .env


def message(to: str = "ivan@example.org", **fields: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "to_name": "Иван Петров",
        "subject": "Заказ отправлен",
        "text": "Текст письма\n.\nс точкой в начале строки",
        "unsubscribe_url": "https://hub.example.com/u/abc",
        "unsubscribe_mailto": "mailto:unsubscribe@example.com?subject=abc",
    }
    return OutgoingMessage(
        delivery_id=1, channel=Channel.EMAIL, key="d1", to=to, **(values | fields)
    )


def send(channel: EmailChannel, *messages: OutgoingMessage) -> None:
    async def go() -> None:
        try:
            for one in messages:
                await channel.send(one)
        finally:
            await channel.aclose()

    asyncio.run(go())


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


# HELO / EHLO


def test_the_server_is_greeted_with_the_configured_name(server: tuple[Greeted, int]) -> None:
    greeted, port = server
    send(EmailChannel(options(port, smtp_helo_name="mail.example.net")), message(), message())
    assert [name for name, _ in greeted.received] == ["mail.example.net"] * 2


@pytest.mark.parametrize(
    ("public_url", "expected"),
    [
        ("https://hub.example.com", "hub.example.com"),
        ("https://Hub.Example.com:8443/base/", "hub.example.com"),
        ("https://почта.рф", "xn--80a1acny.xn--p1ai"),
        ("http://127.0.0.1:8000", None),
        ("http://[::1]:8000", None),
        ("http://localhost:8000", None),
        ("http://hub.localhost", None),
        ("http://hub:8000", None),  # a bare word is what reject_non_fqdn_helo_hostname refuses
    ],
)
def test_the_default_name_is_the_public_urls_host_when_it_is_a_real_name(
    public_url: str, expected: str | None
) -> None:
    assert default_helo_name(public_url) == expected
    smtp = channel_options(settings(public_url=public_url))["smtp"]
    assert isinstance(smtp, SmtpOptions)
    assert smtp.smtp_helo_name == expected


def test_settings_reach_the_channel_and_the_setting_beats_the_public_url(
    server: tuple[Greeted, int],
) -> None:
    greeted, port = server
    chosen = settings(
        public_url="https://hub.example.com", smtp_helo_name="out.example.com", smtp_port=port
    )
    smtp = channel_options(chosen)["smtp"]
    assert isinstance(smtp, SmtpOptions)
    send(EmailChannel(smtp.model_copy(update={"smtp_host": "127.0.0.1"})), message())
    assert greeted.received[0][0] == "out.example.com"

    from_url = channel_options(settings(public_url="https://hub.example.com"))["smtp"]
    assert isinstance(from_url, SmtpOptions)
    send(
        EmailChannel(from_url.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port})),
        message(),
    )
    assert greeted.received[1][0] == "hub.example.com"


def test_without_a_name_the_channel_greets_with_the_fqdn(server: tuple[Greeted, int]) -> None:
    greeted, port = server
    send(EmailChannel(options(port)), message())
    assert greeted.received[0][0] == socket.getfqdn()


@pytest.mark.parametrize("bad", ["mail example.com", "почта.рф", "-bad.example.com", "a_b.com"])
def test_an_unusable_helo_name_is_refused_naming_the_setting(bad: str) -> None:
    with pytest.raises(ValidationError, match="smtp_helo_name"):
        options(25, smtp_helo_name=bad)


# DKIM


def signed_headers(raw: bytes) -> list[bytes]:
    value = re.search(rb"\bh=([^;]+);", raw.split(b"\r\n\r\n", 1)[0])
    assert value is not None
    return [name.strip().lower() for name in re.sub(rb"\s+", b"", value.group(1)).split(b":")]


@pytest.mark.parametrize("to", ["ivan@example.org", "иван@пример.рф"])
def test_every_message_is_signed_and_verifies(
    server: tuple[Greeted, int], key_file: Path, to: str
) -> None:
    greeted, port = server
    dkim_options = options(port, dkim_domain=DOMAIN, dkim_selector=SELECTOR, dkim_key_file=key_file)
    send(EmailChannel(dkim_options), message(to=to), message(to=to, unsubscribe_url=None))
    lookup = dns_for(txt_record(key_file))
    (_, one_click), (_, mailto_only) = greeted.received

    assert one_click.startswith(b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;")
    assert dkim.verify(one_click, dnsfunc=lookup)
    headers = signed_headers(one_click)
    assert {b"from", b"to", b"subject", b"date", b"message-id"} <= set(headers)
    assert b"list-unsubscribe" in headers
    assert b"list-unsubscribe-post" in headers  # RFC 8058 3
    assert dkim.verify(mailto_only, dnsfunc=lookup)
    # Absent headers are not named: naming them would forbid a relay from adding them.
    assert b"list-unsubscribe-post" not in signed_headers(mailto_only)

    body_at = one_click.index(b"\r\n\r\n") + 4
    tampered_body = one_click[:body_at] + one_click[body_at:].replace(b"=", b"-", 1)
    assert tampered_body != one_click
    assert not dkim.verify(tampered_body, dnsfunc=lookup)
    tampered_header = one_click.replace(b"List-Unsubscribe-Post: ", b"List-Unsubscribe-Post:  x", 1)
    assert not dkim.verify(tampered_header, dnsfunc=lookup)


def test_another_key_does_not_verify(
    server: tuple[Greeted, int], key_file: Path, tmp_path: Path
) -> None:
    greeted, port = server
    other = tmp_path / "other.pem"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(other), "2048"], check=True, capture_output=True
    )
    send(
        EmailChannel(
            options(port, dkim_domain=DOMAIN, dkim_selector=SELECTOR, dkim_key_file=other)
        ),
        message(),
    )
    assert not dkim.verify(greeted.received[0][1], dnsfunc=dns_for(txt_record(key_file)))


def test_unsigned_without_dkim_settings(server: tuple[Greeted, int]) -> None:
    greeted, port = server
    send(EmailChannel(options(port)), message())
    assert b"DKIM-Signature" not in greeted.received[0][1]


@pytest.mark.parametrize(
    ("given", "named"),
    [
        ({"dkim_domain": DOMAIN}, "missing: HUB_DKIM_SELECTOR, HUB_DKIM_KEY_FILE"),
        ({"dkim_selector": SELECTOR, "dkim_key_file": "k.pem"}, "missing: HUB_DKIM_DOMAIN"),
        ({"dkim_domain": DOMAIN, "dkim_selector": SELECTOR}, "missing: HUB_DKIM_KEY_FILE"),
    ],
)
def test_start_up_refuses_a_partial_dkim_setting(given: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        settings(**given)
    with pytest.raises(ValidationError, match=named):
        options(25, **given)


def test_start_up_refuses_a_missing_unreadable_or_wrong_key_file(
    tmp_path: Path, key_file: Path
) -> None:
    dkim_settings = {"dkim_domain": DOMAIN, "dkim_selector": SELECTOR}
    with pytest.raises(ValidationError, match=r"HUB_DKIM_KEY_FILE: cannot read .*missing\.pem"):
        settings(**dkim_settings, dkim_key_file=tmp_path / "missing.pem")
    not_a_key = tmp_path / "cert.txt"
    not_a_key.write_text("hello")
    with pytest.raises(ValidationError, match=r"HUB_DKIM_KEY_FILE: .* is not an RSA private key"):
        settings(**dkim_settings, dkim_key_file=not_a_key)
    with pytest.raises(ValidationError, match="HUB_DKIM_KEY_FILE: cannot read"):
        settings(**dkim_settings, dkim_key_file=tmp_path)  # a directory
    assert settings(**dkim_settings, dkim_key_file=key_file).dkim_key_file == key_file


def test_the_key_is_never_shown(key_file: Path) -> None:
    key = key_file.read_bytes()
    secret_line = key.splitlines()[1].decode()
    signer = DkimSigner(domain=DOMAIN, selector=SELECTOR, key=key)
    dkim_options = options(25, dkim_domain=DOMAIN, dkim_selector=SELECTOR, dkim_key_file=key_file)
    for shown in (repr(signer), repr(dkim_options), repr(EmailChannel(dkim_options).__dict__)):
        assert secret_line not in shown


def test_signing_cost(key_file: Path) -> None:
    """Prints the cost per message (`pytest -s`); signing is pure-Python RSA in dkimpy."""
    signer = DkimSigner(domain=DOMAIN, selector=SELECTOR, key=key_file.read_bytes())
    raw = (
        b"From: Hub <hub@example.com>\r\nTo: ivan@example.org\r\nSubject: Hello\r\n"
        b"Date: Mon, 07 Dec 2026 12:00:00 +0000\r\nMessage-ID: <d1@example.com>\r\n"
        b"List-Unsubscribe: <https://hub.example.com/u/abc>\r\n"
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n\r\n" + b"A line of text.\r\n" * 200
    )
    runs = 20
    seconds = timeit.timeit(lambda: signer.sign(raw), number=runs) / runs
    print(f"\nDKIM signing: {seconds * 1000:.2f} ms per message")
    assert dkim.verify(signer.sign(raw), dnsfunc=dns_for(txt_record(key_file)))
