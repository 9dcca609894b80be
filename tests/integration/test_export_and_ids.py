"""Issue 15, items 7 and 8: webhook URLs read one way at save and at send, CSV exports that
never run a formula, and external ids that are one id however their Unicode is typed."""

# Look-alike characters (full-width forms, Unicode full stops) are what these tests are about.
# ruff: noqa: RUF001

from __future__ import annotations

import csv
import io
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from hub.db.models import Contact, EventEndpoint
from hub.domain import Scope, StaffRole
from hub.exports import safe_cell
from hub.runtime import Runtime
from hub.services import staff
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import hub_running, ok, person, settled, timeline, topic, wait_for
from tests.peers.smtp import SmtpPeer
from tests.peers.webhooks import WebhookPeer

UNICODE_DOTS = ["http://127。0。0。1/hook", "http://127．0．0．1/hook", "http://127｡0｡0｡1/hook"]
BAD_PUNYCODE = "http://xn--localhost/hook"
NFC, NFD = "caf\u00e9", "cafe\u0301"  # "café" precomposed, and e + combining acute
FORMULA = '=2+5*7+HYPERLINK("x","open")'


def path(external_id: str) -> str:
    return f"/v1/contacts/{quote(external_id, safe='')}"


def refused_on(response: Any, field: str) -> str:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert field in [d["field"] for d in error["details"]], error
    assert error["message"].startswith(f"{field}:"), error
    message: str = error["message"]
    return message


# -- item 7: save time -------------------------------------------------------------------------


@pytest.mark.parametrize("url", [*UNICODE_DOTS, BAD_PUNYCODE])
def test_a_webhook_url_is_refused_at_save_wherever_one_is_accepted(
    client: TestClient, auth: dict[str, str], url: str
) -> None:
    reason = "private" if url in UNICODE_DOTS else "Punycode"

    assert reason in refused_on(
        client.put(path("c-1"), json={"webhook_url": url}, headers=auth), "webhook_url"
    )
    assert client.get(path("c-1"), headers=auth).status_code == 404
    ok(client.put(path("c-1"), json={}, headers=auth), 201)
    patched = client.patch(path("c-1"), json={"webhook_url": url}, headers=auth)
    assert reason in refused_on(patched, "webhook_url")
    assert ok(client.get(path("c-1"), headers=auth))["webhook_url"] is None

    body = {"url": url, "event_types": ["contact.created"]}
    assert reason in refused_on(client.post("/v1/event-endpoints", json=body, headers=auth), "url")
    body["url"] = "https://hooks.example.com/events"
    endpoint = ok(client.post("/v1/event-endpoints", json=body, headers=auth), 201)
    patched = client.patch(f"/v1/event-endpoints/{endpoint['id']}", json={"url": url}, headers=auth)
    assert reason in refused_on(patched, "url")

    imported = client.post(
        "/v1/contacts/import",
        content=f"external_id,webhook_url\nc-2,{url}\n".encode(),
        headers=auth | {"content-type": "text/csv"},
    )
    report = ok(imported)
    assert report["failed"] == 1
    assert [e["field"] for e in report["errors"]] == ["webhook_url"]
    assert reason in report["errors"][0]["reason"]
    assert client.get(path("c-2"), headers=auth).status_code == 404


def test_a_webhook_url_is_stored_as_it_will_be_sent(
    client: TestClient, auth: dict[str, str]
) -> None:
    saved = ok(
        client.put(
            path("svc"), json={"webhook_url": "https://Hooks.ＥＸＡＭＰＬＥ。com/in"}, headers=auth
        ),
        201,
    )
    assert saved["webhook_url"] == "https://hooks.example.com/in"
    saved = ok(
        client.put(path("svc"), json={"webhook_url": "https://café.example/in"}, headers=auth)
    )
    assert saved["webhook_url"] == "https://xn--caf-dma.example/in"


# -- item 7: send time, for URLs stored before they were checked -------------------------------


@pytest.fixture
def hooks() -> Iterator[WebhookPeer]:
    with WebhookPeer() as peer:
        yield peer


@pytest.fixture
def webhook_hub(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], Runtime]]:
    settings = Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        delivery_max_attempts=3,
        delivery_first_retry_seconds=0.2,
        sweep_interval_seconds=0.1,
        event_retry_schedule=(0.2, 0.2),
    )
    with hub_running(settings) as (client, runtime):
        yield client, make_key(runtime, "ops", Scope.ADMIN), runtime


@pytest.mark.parametrize(
    ("legacy", "code"),
    [
        (BAD_PUNYCODE, "invalid_url"),
        ("http://XN--LOCALHOST:{port}/hook", "invalid_url"),
        ("http://user@127.0.0.1:{port}/hook", "invalid_url"),
        ("http://127.0.0.1\\.example.com:{port}/hook", "invalid_url"),
        ("http://127。0。0。1:{port}/hook", "forbidden_address"),
        ("http://１２７．０．０．１:{port}/hook", "forbidden_address"),
    ],
)
def test_a_stored_url_that_cannot_be_sent_to_fails_for_good(
    webhook_hub: tuple[TestClient, dict[str, str], Runtime],
    hooks: WebhookPeer,
    caplog: pytest.LogCaptureFixture,
    legacy: str,
    code: str,
) -> None:
    client, auth, runtime = webhook_hub
    topic(client, auth, "ops")
    person(
        client,
        auth,
        "svc",
        webhook_url="https://hooks.example.com/in",
        subscribe={"ops": ["webhook"]},
    )
    with runtime.sessions() as session:  # as a row saved before URLs were read this way
        session.execute(update(Contact).values(webhook_url=legacy.format(port=hooks.port)))
        session.commit()
    caplog.set_level(logging.INFO)

    request = {"topic": "ops", "content": {"": {"webhook_json": {"n": 1}}}}
    accepted = ok(client.post("/v1/notifications", json=request, headers=auth), 202)
    (delivery,) = settled(client, auth, accepted["id"])["deliveries"]["items"]

    assert delivery["state"] == "failed"
    assert delivery["error_code"] == code
    assert delivery["attempts"] == 1  # permanent: never retried
    assert delivery["reason"] == "rejected"
    failed = [e for e in timeline(client, auth, "svc") if e["type"] == "delivery.failed"]
    assert len(failed) == 1
    assert hooks.received == []
    assert not [r for r in caplog.records if "crash" in r.getMessage()]


def test_an_event_endpoint_with_an_unusable_stored_url_is_disabled_not_crashed(
    webhook_hub: tuple[TestClient, dict[str, str], Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    client, auth, runtime = webhook_hub
    body = {"url": "https://hooks.example.com/events", "event_types": ["contact.created"]}
    endpoint = ok(client.post("/v1/event-endpoints", json=body, headers=auth), 201)
    with runtime.sessions() as session:
        session.execute(update(EventEndpoint).values(url=BAD_PUNYCODE))
        session.commit()
    caplog.set_level(logging.INFO)
    person(client, auth, "ann")

    def disabled() -> Any:
        found = ok(client.get(f"/v1/event-endpoints/{endpoint['id']}", headers=auth))
        return found if not found["enabled"] else None

    assert "URL" in wait_for("the endpoint to be disabled", disabled)["disabled_reason"]
    (message,) = ok(client.get(f"/v1/event-endpoints/{endpoint['id']}/messages", headers=auth))[
        "items"
    ]
    assert "Punycode" in message["last_error"]
    assert not [r for r in caplog.records if "crash" in r.getMessage()]


# -- item 8: CSV exports -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (FORMULA, "'" + FORMULA),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("  =1+1", "'  =1+1"),  # leading spaces do not hide a formula
        ("\uff1d1+1", "'\uff1d1+1"),  # full-width equals sign
        ("-5", "-5"),  # plain numbers stay numbers
        ("+3.25", "+3.25"),
        ("-5e3", "'-5e3"),  # not plain: quoted, harmlessly
        ("a=1", "a=1"),
        ("", ""),
        (-5, -5),
        (None, None),
    ],
)
def test_a_cell_that_could_be_a_formula_is_written_as_text(value: object, written: object) -> None:
    assert safe_cell(value) == written


@pytest.fixture
def campaign_hub(database_url: str) -> Iterator[tuple[TestClient, dict[str, str], Runtime]]:
    with SmtpPeer() as smtp:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            email_from="Shop <shop@example.com>",
            sweep_interval_seconds=0.1,
        )
        with hub_running(settings) as (client, runtime):
            yield client, make_key(runtime, "marketing", Scope.ADMIN, Scope.CAMPAIGNS), runtime


def signed_in(client: TestClient, runtime: Runtime) -> None:
    """A staff member signed in through the console's own form."""
    with runtime.sessions() as session:
        staff.create(session, "mia@example.com", "a long enough password", StaffRole.VIEWER)
        session.commit()
    form = client.get("/console/login").text
    token = re.search(r'name="csrf" value="([^"]*)"', form)
    fields = {"email": "mia@example.com", "password": "a long enough password"}
    if token:
        fields["csrf"] = token.group(1)
    signed = client.post("/console/login", data=fields, follow_redirects=False)
    assert signed.status_code in (302, 303), signed.text


def test_the_deliveries_csv_never_carries_a_formula(
    campaign_hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = campaign_hub
    topic(client, auth, "offers", allowed_channels=["email"])
    ids = [FORMULA, "@cmd", "-5", "plain"]
    for n, external_id in enumerate(ids):
        ok(client.put(path(external_id), json={"email": f"p{n}@example.com"}, headers=auth), 201)
        ok(
            client.put(
                f"{path(external_id)}/subscriptions/offers",
                json={"channels": ["email"]},
                headers=auth,
            )
        )
    template = {"variants": {"": {"email_subject": "Hi", "email_text": "Sale"}}}
    ok(client.put("/v1/templates/offer", json=template, headers=auth))
    body = {"name": "Sale", "topic": "offers", "template": "offer"}
    draft = ok(client.post("/v1/campaigns", json=body, headers=auth), 201)
    ok(client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth))
    wait_for(
        "the campaign",
        lambda: ok(client.get(f"/v1/campaigns/{draft['id']}", headers=auth))["state"] == "done",
        timeout=30,
    )
    expected = ["'" + FORMULA, "'@cmd", "-5", "plain"]

    exported = client.get(f"/v1/campaigns/{draft['id']}/deliveries.csv", headers=auth)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["contact"] for r in rows) == sorted(expected)

    signed_in(client, runtime)
    console = client.get(f"/console/campaigns/{draft['id']}/deliveries.csv")
    assert console.status_code == 200, console.text
    rows = list(csv.DictReader(io.StringIO(console.text)))
    assert sorted(r["contact"] for r in rows) == sorted(expected)


# -- item 8: external ids in NFC -----------------------------------------------------------------


def test_an_external_id_typed_two_ways_is_one_contact(
    client: TestClient, runtime: Runtime, auth: dict[str, str]
) -> None:
    assert quote(NFC) == "caf%C3%A9"
    assert quote(NFD) == "cafe%CC%81"
    created = ok(
        client.put(path(NFC), json={"name": "Café", "email": "cafe@example.com"}, headers=auth), 201
    )
    assert created["external_id"] == NFC

    found = ok(client.get("/v1/contacts/cafe%CC%81", headers=auth))
    assert found["external_id"] == NFC
    again = client.put(
        path(NFD), json={"name": "Café 2", "email": "cafe@example.com"}, headers=auth
    )
    assert again.status_code == 200, again.text  # the same contact, not a second one
    ok(client.patch(path(NFD), json={"locale": "fr"}, headers=auth))
    assert ok(client.get(path(NFC), headers=auth))["locale"] == "fr"

    topic(client, auth, "news")
    ok(client.put(f"{path(NFD)}/subscriptions/news", json={"channels": ["email"]}, headers=auth))
    (subscription,) = ok(client.get(f"{path(NFC)}/subscriptions", headers=auth))
    assert subscription["topic"] == "news"
    assert ok(client.get(f"{path(NFD)}/timeline", headers=auth))["items"]

    inline = {"topic": "news", "recipients": [NFD], "content": {"": {"email_text": "Hi"}}}
    ok(client.post("/v1/notifications", json=inline, headers=auth), 202)

    for content, kind in [
        (f"external_id,name\n{NFD},From CSV\n", "text/csv"),
        (f'{{"external_id": "{NFD}", "name": "From NDJSON"}}\n', "application/x-ndjson"),
    ]:
        imported = client.post(
            "/v1/contacts/import", content=content.encode(), headers=auth | {"content-type": kind}
        )
        assert ok(imported)["updated"] == 1
    listed = ok(client.get("/v1/contacts?limit=10", headers=auth))["items"]
    assert [c["external_id"] for c in listed] == [NFC]

    signed_in(client, runtime)
    page = client.get(f"/console/contacts/{quote(NFD)}")
    assert page.status_code == 200, page.text
    searched = client.get("/console/contacts", params={"q": NFD})
    assert f'href="/console/contacts/{quote(NFC)}"' in searched.text
