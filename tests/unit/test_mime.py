"""The hand-built MIME: every message is checked by parsing it back with the standard library."""

# ruff: noqa: RUF001 (Russian text is the point: Cyrillic letters that look Latin are expected)

from __future__ import annotations

import base64
import email.policy
import email.utils
import re
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import BytesParser, Parser
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.channels.base import OutgoingMessage, PermanentDeliveryError
from hub.channels.email import EmailChannel, SmtpOptions
from hub.channels.email.mime import MimeBuilder
from hub.domain import Channel

BUILDER = MimeBuilder(from_header="Хаб Уведомлений <hub@example.com>")
ENCODED_WORD = re.compile(rb"=\?utf-8\?b\?([A-Za-z0-9+/=]*)\?=")


def message(**fields: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "delivery_id": 1,
        "channel": Channel.EMAIL,
        "key": "d1-7f3a",
        "to": "ivan@example.ru",
        "to_name": "Иван Петров",
        "subject": "Ваш заказ отправлен",
        "text": "Здравствуйте, Иван!\n",
        "html": "<p>Здравствуйте, Иван!</p>\n",
    }
    return OutgoingMessage(**(values | fields))


def parse(data: bytes) -> EmailMessage:
    parsed = BytesParser(policy=email.policy.default).parsebytes(data)
    assert isinstance(parsed, EmailMessage)
    assert not parsed.defects, parsed.defects
    return parsed


def display_name(parsed: EmailMessage, header: str) -> str:
    """The display name decoded as RFC 2047 says: adjacent encoded words join with no space.

    policy.default's own `display_name` adds one between them on CPython < 3.14 (gh-128110).
    """
    raw = next(value for name, value in parsed.raw_items() if name.lower() == header.lower())
    phrase, _ = email.utils.parseaddr(raw)
    return str(make_header(decode_header(phrase)))


def text_of(parsed: EmailMessage, subtype: str) -> str:
    part = parsed.get_body((subtype,))
    assert part is not None
    content = part.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def header_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def test_russian_names_subject_and_bodies_round_trip() -> None:
    built = BUILDER.build(message())
    parsed = parse(built.data)
    assert parsed["Subject"] == "Ваш заказ отправлен"
    assert display_name(parsed, "To") == "Иван Петров"
    assert display_name(parsed, "From") == "Хаб Уведомлений"
    assert parsed["To"].addresses[0].addr_spec == "ivan@example.ru"
    assert parsed.get_content_type() == "multipart/alternative"
    assert text_of(parsed, "plain") == "Здравствуйте, Иван!\n"
    assert text_of(parsed, "html") == "<p>Здравствуйте, Иван!</p>\n"
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Date"].datetime.tzinfo is not None
    assert not built.smtputf8
    assert built.data.isascii()


def test_message_id_is_the_delivery_key_and_stable() -> None:
    first, again = BUILDER.build(message()), BUILDER.build(message())
    assert first.message_id == again.message_id == "<d1-7f3a@example.com>"
    assert parse(first.data)["Message-ID"] == "<d1-7f3a@example.com>"
    other = MimeBuilder(from_header="hub@example.com", message_id_domain="mail.example.org")
    assert other.build(message()).message_id == "<d1-7f3a@mail.example.org>"


def test_long_emoji_subject_folds_without_splitting_a_character() -> None:
    subject = "Скидка 50% 🎉 на всё! " * 12 + "👨‍👩‍👧‍👦"
    built = BUILDER.build(message(subject=subject, to_name="Константин Константинопольский 🙂"))
    parsed = parse(built.data)
    assert parsed["Subject"] == subject
    assert display_name(parsed, "To") == "Константин Константинопольский 🙂"
    words = ENCODED_WORD.findall(built.data)
    assert len(words) > 10
    for payload in words:
        assert len(payload) + 12 <= 75
        base64.b64decode(payload).decode("utf-8")  # each word stands alone: no split character
    assert all(len(line) <= 78 for line in header_lines(built.data))


def test_single_part_when_only_text_or_only_html() -> None:
    text_only = parse(BUILDER.build(message(html=None)).data)
    assert text_only.get_content_type() == "text/plain"
    assert text_only.get_content().replace("\r\n", "\n") == "Здравствуйте, Иван!\n"
    html_only = parse(BUILDER.build(message(text=None, html="<b>Привет</b>")).data)
    assert html_only.get_content_type() == "text/html"
    assert html_only.get_content() == "<b>Привет</b>"  # no newline invented at the end
    neither = parse(BUILDER.build(message(text=None, html=None)).data)
    assert neither.get_content_type() == "text/plain"
    assert neither.get_content() == ""


@pytest.mark.parametrize("html", [None, "<p>x</p>"])
def test_awkward_bodies_survive_byte_for_byte(html: str | None) -> None:
    text = (
        "From here on, a line mbox would mangle\n"
        ".\n"
        ". a dot line SMTP would eat\n"
        "trailing spaces   \n"
        "trailing tab\t\n"
        "ascii = sign and =?utf-8?q?not-a-word?=\n"
        + "x" * 10_000
        + "\n"
        + "щ" * 3000
        + "\r\nold mac\rend"
    )
    built = BUILDER.build(message(text=text, html=html))
    expected = text.replace("\r\n", "\n").replace("\r", "\n")
    assert text_of(parse(built.data), "plain") == expected
    assert max(len(line) for line in built.data.split(b"\r\n")) <= 78
    assert b"\nFrom " not in built.data  # =46rom: safe from mbox's ">From"
    assert b"\r" not in built.data.replace(b"\r\n", b"")
    assert b"\n" not in built.data.replace(b"\r\n", b"")


def test_mostly_russian_body_goes_base64_and_ascii_body_quoted_printable() -> None:
    russian = BUILDER.build(message(text="Привет, мир! " * 100, html=None)).data
    assert b"Content-Transfer-Encoding: base64" in russian
    english = BUILDER.build(message(text="Hello, world! " * 100, html=None)).data
    assert b"Content-Transfer-Encoding: quoted-printable" in english


@pytest.mark.parametrize(
    "fields",
    [
        {"subject": "Hello\r\nBcc: victim@example.com"},
        {"subject": "Hello\nBcc: victim@example.com"},
        {"to_name": 'Eve"\r\nBcc: victim@example.com\r\n'},
        {"headers": {"X-Campaign": "spring\r\nBcc: victim@example.com"}},
        {"headers": {"X-Campaign": "spring\rBcc: victim@example.com"}},
    ],
)
def test_header_injection_is_impossible(fields: dict[str, Any]) -> None:
    parsed = parse(BUILDER.build(message(**fields)).data)
    assert parsed["Bcc"] is None
    assert [a.addr_spec for a in parsed["To"].addresses] == ["ivan@example.ru"]


@pytest.mark.parametrize(
    "fields",
    [
        {"to": "ivan@example.ru\r\nBcc: victim@example.com"},
        {"to": "ivan@example.ru, victim@example.com"},
        {"to": "Ivan <ivan@example.ru>"},
        {"to": "no-at-sign"},
        {"key": "has space"},
        {"key": "a>\r\nBcc: x@y"},
        {"headers": {"Bcc": "victim@example.com"}},
        {"headers": {"Content-Type": "text/plain"}},
        {"headers": {"X-Bad Name": "v"}},
        {"headers": {"X-Bad:Name": "v"}},
        {"unsubscribe_url": "https://example.com/u?t=1>, <https://evil.example"},
        {"unsubscribe_url": "https://example.com/u\r\nBcc: x@y"},
    ],
)
def test_unusable_fields_are_refused(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"not usable|set by the channel"):
        BUILDER.build(message(**fields))


def test_the_channel_turns_an_unbuildable_message_into_a_permanent_error() -> None:
    channel = EmailChannel(SmtpOptions(smtp_host="127.0.0.1", _env_file=None))
    with pytest.raises(PermanentDeliveryError, match="cannot be built") as caught:
        channel.build(message(to="two@example.com, three@example.com"))
    assert caught.value.suppress is None


def test_list_unsubscribe_with_one_click_post() -> None:
    both = parse(
        BUILDER.build(
            message(unsubscribe_url="https://hub.example/u/tok", unsubscribe_mailto="u@hub.example")
        ).data
    )
    assert both["List-Unsubscribe"] == "<https://hub.example/u/tok>, <mailto:u@hub.example>"
    assert both["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    mailto_only = parse(BUILDER.build(message(unsubscribe_mailto="mailto:u@hub.example")).data)
    assert mailto_only["List-Unsubscribe"] == "<mailto:u@hub.example>"
    assert mailto_only["List-Unsubscribe-Post"] is None
    neither = parse(BUILDER.build(message()).data)
    assert neither["List-Unsubscribe"] is None


def test_extra_headers_plain_long_and_non_ascii() -> None:
    long_value = " ".join(f"token{i}" for i in range(40))
    built = BUILDER.build(
        message(headers={"X-Campaign": "весна-2025", "X-Long": long_value, "Reply-To": "a@b.c"})
    )
    parsed = parse(built.data)
    assert parsed["X-Campaign"] == "весна-2025"
    assert parsed["X-Long"] == long_value
    assert parsed["Reply-To"] == "a@b.c"
    assert all(len(line) <= 78 for line in header_lines(built.data))


def test_ascii_names_are_quoted_and_escaped() -> None:
    built = BUILDER.build(message(to_name='O\'Brien, "Pat" \\ Jr.', subject="Plain subject"))
    assert b"Subject: Plain subject\r\n" in built.data
    parsed = parse(built.data)
    assert parsed["To"].addresses[0].display_name == 'O\'Brien, "Pat" \\ Jr.'
    assert display_name(parsed, "To") == 'O\'Brien, "Pat" \\ Jr.'


def test_non_ascii_address_takes_the_smtputf8_path() -> None:
    built = BUILDER.build(message(to="иван@пример.рф", unsubscribe_url="https://h.example/u"))
    assert built.smtputf8
    # BytesParser reads 8-bit headers as undecodable bytes; RFC 6532 headers are UTF-8 text.
    parsed = Parser(policy=email.policy.default).parsestr(built.data.decode("utf-8"))
    assert isinstance(parsed, EmailMessage)
    assert parsed["To"].addresses[0].addr_spec == "иван@пример.рф"
    assert parsed["To"].addresses[0].display_name == "Иван Петров"
    assert parsed["Subject"] == "Ваш заказ отправлен"
    assert parsed["Message-ID"] == built.message_id
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert text_of(parsed, "plain") == "Здравствуйте, Иван!\n"


NAMES = st.one_of(st.none(), st.text(max_size=120), st.text(st.characters(max_codepoint=127)))
TEXTS = st.one_of(st.none(), st.text(max_size=3000))


@settings(max_examples=150, deadline=None)
@given(subject=st.text(max_size=300), name=NAMES, text=TEXTS, html=TEXTS, note=st.text())
def test_any_text_round_trips_within_line_limits(
    subject: str, name: str | None, text: str | None, html: str | None, note: str
) -> None:
    built = BUILDER.build(
        message(subject=subject, to_name=name, text=text, html=html, headers={"X-Note": note})
    )
    parsed = parse(built.data)
    assert (parsed["Subject"] or "") == re.sub(r"[\x00-\x1f\x7f]", " ", subject)
    assert parsed["X-Note"] == re.sub(r"[\x00-\x1f\x7f]", " ", note)
    clean_name = " ".join(re.sub(r"[\x00-\x1f\x7f]", " ", name or "").split())
    assert display_name(parsed, "To") == clean_name
    assert parsed["To"].addresses[0].addr_spec == "ivan@example.ru"
    lines = built.data.split(b"\r\n")
    assert max(len(line) for line in lines) <= 998
    assert all(len(line) <= 78 for line in header_lines(built.data))
    assert b"\n" not in built.data.replace(b"\r\n", b"")
    for part, value in (("plain", text), ("html", html)):
        if value is not None:
            assert text_of(parsed, part) == value.replace("\r\n", "\n").replace("\r", "\n")
