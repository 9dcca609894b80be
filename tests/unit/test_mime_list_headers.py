"""List-Unsubscribe, List-Id and Feedback-ID: plain ASCII on the wire on both MIME paths."""

from __future__ import annotations

import email.policy
import email.utils
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import Parser
from typing import Any

import pytest

from hub.channels.base import OutgoingMessage
from hub.channels.email.mime import MimeBuilder
from hub.domain import Channel

BUILDER = MimeBuilder(from_header="Hub News <news@example.com>")
UNSUBSCRIBE = "https://hub.example.com/unsubscribe/tok.abc-123"
MAILTO = "mailto:unsubscribe@example.com?subject=unsubscribe%20tok.abc-123"
INTERNATIONAL = "josé@exämple.com"


def message(**fields: Any) -> OutgoingMessage:
    values: dict[str, Any] = {
        "delivery_id": 1,
        "channel": Channel.EMAIL,
        "key": "hub-1-2",
        "to": "ann@example.com",
        "to_name": "Ann Lee",
        "subject": "Your order",
        "text": "Shipped.\n",
        "unsubscribe_url": UNSUBSCRIBE,
        "unsubscribe_mailto": MAILTO,
        "list_id": "orders",
        "list_name": "Orders",
        "feedback_id": "api:orders:hub",
    }
    return OutgoingMessage(**(values | fields))


def parse(data: bytes) -> EmailMessage:
    # Decoded first: RFC 6532 headers are UTF-8, which BytesParser would surrogate-escape.
    parsed = Parser(policy=email.policy.default).parsestr(data.decode("utf-8"))
    assert isinstance(parsed, EmailMessage)
    assert not parsed.defects, parsed.defects
    return parsed


def raw_header(parsed: EmailMessage, name: str) -> str:
    """The header as written, unfolded (CRLF before white space removed), not decoded."""
    values = [v for n, v in parsed.raw_items() if n.lower() == name.lower()]
    assert len(values) == 1, (name, values)
    return str(values[0]).replace("\r\n", "").replace("\n", "")


@pytest.mark.parametrize("to", ["ann@example.com", INTERNATIONAL], ids=["ascii", "smtputf8"])
def test_list_unsubscribe_is_plain_angle_bracketed_uris_on_both_paths(to: str) -> None:
    built = BUILDER.build(message(to=to))

    assert built.smtputf8 is (not to.isascii())
    assert b"List-Unsubscribe: <https://" in built.data
    assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in built.data
    assert b"=?" not in built.data.split(b"\r\n\r\n")[0].split(b"List-Unsubscribe")[1]
    parsed = parse(built.data)
    assert raw_header(parsed, "List-Unsubscribe") == f"<{UNSUBSCRIBE}>, <{MAILTO}>"
    assert str(parsed["List-Unsubscribe"]) == f"<{UNSUBSCRIBE}>, <{MAILTO}>"
    assert str(parsed["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert parsed["To"].addresses[0].addr_spec == to
    assert parsed.get_content().strip() == "Shipped."  # the headers did not eat the body


@pytest.mark.parametrize("to", ["ann@example.com", INTERNATIONAL], ids=["ascii", "smtputf8"])
def test_a_long_unsubscribe_link_is_folded_only_between_the_uris(to: str) -> None:
    url = "https://hub.example.com/unsubscribe/" + "t" * 120
    built = BUILDER.build(message(to=to, unsubscribe_url=url))

    head = built.data.split(b"\r\n\r\n")[0]
    line = head[head.index(b"List-Unsubscribe:") :].split(b"\r\nList-Unsubscribe-Post")[0]
    assert line == f"List-Unsubscribe: <{url}>,\r\n <{MAILTO}>".encode("ascii")
    assert str(parse(built.data)["List-Unsubscribe"]) == f"<{url}>, <{MAILTO}>"


@pytest.mark.parametrize("to", ["ann@example.com", INTERNATIONAL], ids=["ascii", "smtputf8"])
def test_list_id_names_the_topic_under_the_senders_domain(to: str) -> None:
    parsed = parse(BUILDER.build(message(to=to)).data)

    assert raw_header(parsed, "List-Id") == '"Orders" <orders.example.com>'


@pytest.mark.parametrize("to", ["ann@example.com", INTERNATIONAL], ids=["ascii", "smtputf8"])
def test_a_non_ascii_topic_name_is_encoded_and_the_id_stays_ascii(to: str) -> None:
    built = BUILDER.build(message(to=to, list_name="Заказы и доставка"))

    raw = raw_header(parse(built.data), "List-Id")
    assert raw.isascii()
    phrase, list_id = email.utils.parseaddr(raw)
    assert list_id == "orders.example.com"
    assert str(make_header(decode_header(phrase))) == "Заказы и доставка"


def test_list_id_without_a_name_is_the_bare_id_and_its_domain_is_the_senders_in_idna() -> None:
    builder = MimeBuilder(from_header="Hub <hub@пример.рф>")
    built = builder.build(message(list_id="shop.orders", list_name=None))

    assert built.smtputf8  # a UTF-8 sender: the slow path
    assert raw_header(parse(built.data), "List-Id") == "<shop.orders.xn--e1afmkfd.xn--p1ai>"


def test_list_id_comes_from_the_sender_not_the_message_id_domain() -> None:
    builder = MimeBuilder(from_header="news@example.com", message_id_domain="mail.example.net")
    built = builder.build(message())

    assert built.message_id.endswith("@mail.example.net>")
    assert raw_header(parse(built.data), "List-Id") == '"Orders" <orders.example.com>'


@pytest.mark.parametrize("to", ["ann@example.com", INTERNATIONAL], ids=["ascii", "smtputf8"])
def test_feedback_id_is_written_as_given(to: str) -> None:
    built = BUILDER.build(message(to=to, feedback_id="42:orders:hub"))

    assert b"\r\nFeedback-ID: 42:orders:hub\r\n" in built.data
    assert raw_header(parse(built.data), "Feedback-ID") == "42:orders:hub"


def test_a_message_without_them_carries_none_of_them() -> None:
    built = BUILDER.build(
        message(unsubscribe_url=None, unsubscribe_mailto=None, list_id=None, feedback_id=None)
    )

    parsed = parse(built.data)
    for name in ("List-Unsubscribe", "List-Unsubscribe-Post", "List-Id", "Feedback-ID"):
        assert name not in parsed, name


@pytest.mark.parametrize(
    "feedback_id", ["a:b:c:d:e", "api orders:hub", "api:заказы:hub", "api::hub", ""]
)
def test_an_unusable_feedback_id_is_refused_not_written(feedback_id: str) -> None:
    if not feedback_id:  # empty means none: nothing to refuse
        assert b"Feedback-ID" not in BUILDER.build(message(feedback_id=feedback_id)).data
        return
    with pytest.raises(ValueError, match="feedback_id"):
        BUILDER.build(message(feedback_id=feedback_id))


@pytest.mark.parametrize("name", ["List-Id", "list-id", "Feedback-ID", "List-Unsubscribe"])
@pytest.mark.parametrize("to", ["ann@example.com", INTERNATIONAL], ids=["ascii", "smtputf8"])
def test_a_template_cannot_forge_the_list_headers(name: str, to: str) -> None:
    with pytest.raises(ValueError, match="set by the channel"):
        BUILDER.build(message(to=to, headers={name: "<forged.example.org>"}))
