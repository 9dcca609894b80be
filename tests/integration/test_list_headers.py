"""A topic's e-mail through dispatch to the SMTP peer carries its List-Id, Feedback-ID and a
plain one-click List-Unsubscribe, for an internationalised address too (SQLite and PostgreSQL)."""

from __future__ import annotations

import email.policy
import email.utils
from collections.abc import Iterator
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.parser import Parser

import pytest
from fastapi.testclient import TestClient

from hub.domain import Scope
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import hub_running, ok, peer_settings, person, settled, topic
from tests.peers.smtp import SmtpPeer
from tests.peers.twilio import TwilioPeer

ORDER = {"variants": {"": {"email_subject": "Order shipped", "email_text": "Shipped."}}}
INTERNATIONAL = "josé@exämple.com"


@pytest.fixture
def wired(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], SmtpPeer]]:
    with SmtpPeer() as smtp, TwilioPeer() as twilio:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            public_url="https://hub.example.com",
            unsubscribe_mailto="unsubscribe@example.com",
            **peer_settings(smtp, twilio) | {"email_from": "Example Shop <shop@example.com>"},
        )
        with hub_running(settings) as (client, runtime):
            yield client, make_key(runtime, "shop", Scope.ADMIN), smtp


def headers(data: bytes) -> EmailMessage:
    parsed = Parser(policy=email.policy.default).parsestr(data.decode("utf-8"))
    assert isinstance(parsed, EmailMessage)
    assert not parsed.defects, parsed.defects
    return parsed


def raw(parsed: EmailMessage, name: str) -> str:
    (value,) = [str(v) for n, v in parsed.raw_items() if n.lower() == name.lower()]
    return value.replace("\r\n", "").replace("\n", "")


def test_a_topics_mail_names_its_list_and_feedback_stream_and_unsubscribes_in_plain_text(
    wired: tuple[TestClient, dict[str, str], SmtpPeer],
) -> None:
    client, auth, smtp = wired
    topic(client, auth, "orders", name="Заказы")
    ok(client.put("/v1/templates/order", json=ORDER, headers=auth))
    person(client, auth, "ann", email="ann@example.com", subscribe={"orders": ["email"]})
    person(client, auth, "jose", email=INTERNATIONAL, subscribe={"orders": ["email"]})
    sent = ok(
        client.post(
            "/v1/notifications", json={"topic": "orders", "template": "order"}, headers=auth
        ),
        202,
    )
    assert settled(client, auth, sent["id"])["counts"] == {"sent": 2}

    mails = {m.rcpt_tos[0]: m for m in smtp.wait_for(2)}
    assert set(mails) == {"ann@example.com", INTERNATIONAL}
    assert "SMTPUTF8" in [o.upper() for o in mails[INTERNATIONAL].mail_options]
    for mail in mails.values():
        assert b"\r\nList-Unsubscribe: <https://hub.example.com/unsubscribe/" in mail.data
        assert b"\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in mail.data
        parsed = headers(mail.data)
        https, mailto = (u.strip(" <>") for u in raw(parsed, "List-Unsubscribe").split(","))
        assert https.startswith("https://hub.example.com/unsubscribe/")
        assert mailto.startswith("mailto:unsubscribe@example.com?subject=unsubscribe")
        phrase, list_id = email.utils.parseaddr(raw(parsed, "List-Id"))
        assert list_id == "orders.example.com"
        assert str(make_header(decode_header(phrase))) == "Заказы"
        assert raw(parsed, "Feedback-ID") == "api:orders:hub"
        # The one-click link in the header really unsubscribes (RFC 8058's POST).
        one_click = {"List-Unsubscribe": "One-Click"}
        assert client.post(https[len("https://hub.example.com") :], data=one_click).is_success
    for external_id in ("ann", "jose"):
        left = client.get(f"/v1/contacts/{external_id}/subscriptions/orders", headers=auth)
        assert ok(left)["status"] == "unsubscribed"
