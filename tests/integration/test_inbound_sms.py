"""What people tell Hub through Twilio: STOP suppresses at once, START restores, HELP answers,
other texts are kept, and 9 pressed during a call stops calls."""

from __future__ import annotations

import secrets
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hub.app import create_app
from hub.domain import Scope
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import PUBLIC_URL, TWILIO_TOKEN, ok, person, timeline, twilio_post

NUMBER = "+14155550177"
PATH = "/inbound/twilio/sms"


@pytest.fixture
def app(database_url: str) -> Iterator[tuple[TestClient, dict[str, str]]]:
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        public_url=PUBLIC_URL,
        twilio_auth_token=TWILIO_TOKEN,
        sms_help_text="Acme alerts. Reply STOP.",
    )
    runtime = Runtime.build(settings)
    with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
        auth = make_key(runtime, "ops", Scope.ADMIN)
        person(client, auth, "olga", phone=NUMBER)
        yield client, auth
    runtime.close()


def text(client: TestClient, body: str, **fields: str) -> ET.Element:
    answer = twilio_post(
        client,
        PATH,
        {"From": NUMBER, "To": "+15005550006", "Body": body, "MessageSid": new_sid()} | fields,
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/xml")
    return ET.fromstring(answer.text)


def new_sid() -> str:
    return "SM" + secrets.token_hex(16)


def suppressed(client: TestClient, auth: dict[str, str]) -> list[str]:
    found = ok(
        client.get("/v1/suppressions", params={"channel": "sms", "address": NUMBER}, headers=auth)
    )
    return [row["reason"] for row in found["items"]]


@pytest.mark.parametrize(
    "body",
    ["STOP", " stop ", "Unsubscribe", "stopall", "CANCEL", "end", "Quit", "revoke", "OPTOUT"],
)
def test_every_stop_word_suppresses_at_once(
    app: tuple[TestClient, dict[str, str]], body: str
) -> None:
    client, auth = app
    reply = text(client, body)
    assert list(reply) == []  # the carrier confirms a STOP; Hub adds nothing
    assert suppressed(client, auth) == ["sms_stop"]
    kinds = [e["type"] for e in timeline(client, auth, "olga")[:2]]
    assert kinds == ["inbound.message", "suppression.added"]


def test_start_restores_only_what_a_stop_set(app: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = app
    text(client, "STOP")
    text(client, "start")
    assert suppressed(client, auth) == []
    ok(
        client.post(
            "/v1/suppressions",
            json={"channel": "sms", "address": NUMBER, "reason": "manual"},
            headers=auth,
        ),
        201,
    )
    text(client, "YES")
    assert suppressed(client, auth) == ["manual"]  # staff's decision is not the person's


def test_help_answers_and_changes_nothing(app: tuple[TestClient, dict[str, str]]) -> None:
    client, auth = app
    before = timeline(client, auth, "olga")
    reply = text(client, " help ")
    assert [m.text for m in reply.iter("Message")] == ["Acme alerts. Reply STOP."]
    assert suppressed(client, auth) == []
    assert timeline(client, auth, "olga") == before


def test_any_other_text_is_kept_on_the_senders_timeline(
    app: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = app
    text(client, "Can I move my appointment to Friday?")
    (event,) = [e for e in timeline(client, auth, "olga") if e["type"] == "inbound.message"]
    assert event["changes"]["body"] == "Can I move my appointment to Friday?"
    assert event["actor_kind"] == "inbound"
    assert suppressed(client, auth) == []


def test_a_replayed_text_is_answered_and_changes_nothing(
    app: tuple[TestClient, dict[str, str]],
) -> None:
    """A captured START, replayed after a later STOP, must not lift it: Twilio's signature
    covers the request, not the moment, so Hub remembers the MessageSids it acted on."""
    client, auth = app
    start = new_sid()
    text(client, "STOP")
    text(client, "START", MessageSid=start)
    text(client, "STOP")
    before = timeline(client, auth, "olga")
    text(client, "START", MessageSid=start)
    assert suppressed(client, auth) == ["sms_stop"]
    assert timeline(client, auth, "olga") == before
    hello = new_sid()
    text(client, "hello", MessageSid=hello)
    text(client, "hello", MessageSid=hello)
    kept = [e for e in timeline(client, auth, "olga") if e["changes"].get("body") == "hello"]
    assert len(kept) == 1


def test_a_forged_stop_is_refused_and_changes_nothing(
    app: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = app
    params = {"From": NUMBER, "Body": "STOP"}
    assert twilio_post(client, PATH, params, signature=None).status_code == 403
    assert twilio_post(client, PATH, params, signature="forged").status_code == 403
    assert suppressed(client, auth) == []


def test_pressing_9_during_a_call_stops_calls_to_that_number(
    app: tuple[TestClient, dict[str, str]],
) -> None:
    client, auth = app
    call = {"CallSid": "CA" + "b" * 32, "To": NUMBER, "From": "+15005550006"}
    other = twilio_post(client, "/inbound/twilio/voice", call | {"Digits": "1"})
    assert other.status_code == 200
    assert (
        ok(client.get("/v1/suppressions", params={"channel": "voice"}, headers=auth))["items"] == []
    )
    nine = twilio_post(client, "/inbound/twilio/voice", call | {"Digits": "9"})
    assert nine.status_code == 200
    assert ET.fromstring(nine.text).find("Hangup") is not None
    (row,) = ok(client.get("/v1/suppressions", params={"channel": "voice"}, headers=auth))["items"]
    assert row["reason"] == "voice_opt_out"
    assert row["address"] == NUMBER
    assert suppressed(client, auth) == []  # SMS is another channel: untouched
    forged = twilio_post(client, "/inbound/twilio/voice", call | {"Digits": "9"}, signature="x")
    assert forged.status_code == 403
