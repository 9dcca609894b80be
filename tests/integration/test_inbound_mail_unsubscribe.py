"""A mail to the unsubscribe mailbox does what the one-click POST does, through the same
service: a topic's token unsubscribes from the topic, a token without one from everything, a
required topic is refused, an expired token changes nothing. The listener runs on its own
event loop over a real socket, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import smtplib
import time
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db.models import Contact
from hub.preferences.tokens import LinkSigner, Purpose
from hub.runtime import Runtime
from hub.services import unsubscribes
from tests.integration.test_inbound_mail import UNSUBSCRIBE, plain_mail
from tests.integration.test_inbound_mail_limits import listening


@pytest.fixture
def port(runtime: Runtime) -> Iterator[int]:
    with listening(runtime, lmtp=False) as bound:
        yield bound


def _person(client: TestClient, auth: dict[str, str], external_id: str) -> None:
    topics: dict[str, dict[str, object]] = {
        "offers": {"name": "Offers", "category": "marketing"},
        "security": {"name": "Security", "required": True},
    }
    for key, body in topics.items():
        topic = body | {"allowed_channels": ["email"], "default_channels": ["email"]}
        assert client.put(f"/v1/topics/{key}", json=topic, headers=auth).status_code in {200, 201}
    contact = {"email": f"{external_id}@example.com"}
    assert client.put(f"/v1/contacts/{external_id}", json=contact, headers=auth).is_success
    for key in ("offers", "security"):
        answer = client.put(
            f"/v1/contacts/{external_id}/subscriptions/{key}",
            json={"channels": ["email"]},
            headers=auth,
        )
        assert answer.is_success, answer.text


def _token(
    runtime: Runtime, external_id: str, topic: str | None, *, signer: LinkSigner | None = None
) -> str:
    with runtime.reads() as session:
        contact = session.scalars(select(Contact).where(Contact.external_id == external_id)).one()
        links = signer or unsubscribes.signer(runtime.settings)
        return links.sign(Purpose.UNSUBSCRIBE, contact.id, topic, link_key=contact.link_key)


def _send(port: int, to: str, subject: str) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
        assert smtp.sendmail("x@example.com", [to], plain_mail("x@example.com", to, subject)) == {}


def _state(client: TestClient, auth: dict[str, str], external_id: str) -> dict[str, str]:
    subscriptions = client.get(f"/v1/contacts/{external_id}/subscriptions", headers=auth).json()
    return {s["topic"]: s["status"] for s in subscriptions}


def _unsubscribed_all(client: TestClient, auth: dict[str, str], external_id: str) -> bool:
    preferences = client.get(f"/v1/contacts/{external_id}/preferences", headers=auth).json()
    return bool(preferences["unsubscribed_all"])


def test_a_topic_token_leaves_the_topic_and_a_required_one_is_refused(
    client: TestClient, auth: dict[str, str], runtime: Runtime, port: int
) -> None:
    _person(client, auth, "ann")
    _send(port, UNSUBSCRIBE, f"unsubscribe {_token(runtime, 'ann', 'security')}")
    _send(port, UNSUBSCRIBE, f"Fwd: Re: unsubscribe {_token(runtime, 'ann', 'offers')}")
    assert _state(client, auth, "ann") == {"offers": "unsubscribed", "security": "subscribed"}
    assert not _unsubscribed_all(client, auth, "ann")


def test_a_token_without_a_topic_unsubscribes_from_everything(
    client: TestClient, auth: dict[str, str], runtime: Runtime, port: int
) -> None:
    _person(client, auth, "bob")
    _send(port, f"unsubscribe+{_token(runtime, 'bob', None)}@example.com", "")
    assert _unsubscribed_all(client, auth, "bob")
    events = client.get("/v1/contacts/bob/timeline", headers=auth).json()["items"]
    by_mail = [e for e in events if e["source"] == unsubscribes.BY_MAIL_SOURCE]
    assert [e["type"] for e in by_mail] == ["preferences.changed"]


def test_an_expired_token_changes_nothing(
    client: TestClient, auth: dict[str, str], runtime: Runtime, port: int
) -> None:
    _person(client, auth, "cy")
    days = runtime.settings.link_ttl_days + 1
    long_ago = time.time() - dt.timedelta(days=days).total_seconds()
    old = LinkSigner(
        runtime.settings.link_secrets(),
        max_age=dt.timedelta(days=runtime.settings.link_ttl_days),
        clock=lambda: long_ago,
    )
    _send(port, UNSUBSCRIBE, f"unsubscribe {_token(runtime, 'cy', 'offers', signer=old)}")
    assert _state(client, auth, "cy") == {"offers": "subscribed", "security": "subscribed"}
