"""Issue 15: what a black-box attack found, through the public API on both databases.

A hostile template is a 422 wherever it is written and a permanent failure where it is sent
(15.1); a template preview names a contact only for a `contacts` key and a `metrics` key reaches
nothing but /metrics (15.4); five inputs that answered 500 answer a 4xx naming the field (15.6).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from hub.db.models import Template
from hub.domain import Scope
from hub.runtime import Runtime
from tests.conftest import make_key
from tests.dispatching import ok, person, settled, timeline, topic

# The attack's own payload: forty doublings of a shared list, then one `==`. N=28 took 4.9 s
# inside one C call before; N=40 would take a day.
FREEZE = (
    "{% set ns = namespace(a=[1], b=[1]) %}{% for i in range(40) %}"
    "{% set ns.a = [ns.a, ns.a] %}{% set ns.b = [ns.b, ns.b] %}{% endfor %}{{ ns.a == ns.b }}"
)
# The same, only for one person: a sample render at save time cannot see it.
FREEZE_FOR_VICTOR = "{% if contact.name == 'Victor' %}" + FREEZE + "{% endif %}Hello"


@pytest.fixture
def hub(
    admin_hub: tuple[TestClient, dict[str, str], Runtime],
) -> tuple[TestClient, dict[str, str], Runtime]:
    topic(admin_hub[0], admin_hub[1], "news")
    return admin_hub


def field_of(answer: object) -> list[str]:
    body = answer.json()  # type: ignore[attr-defined]
    return [d["field"] for d in body["error"]["details"]]


# -- 15.1 a hostile template ------------------------------------------------------------------


def test_a_freezing_template_is_a_422_when_saved(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, _ = hub
    started = time.monotonic()
    answer = client.put(
        "/v1/templates/freeze",
        json={"variants": {"": {"email_subject": "Hi", "email_html": FREEZE}}},
        headers=auth,
    )
    assert answer.status_code == 422, answer.text
    assert field_of(answer) == ["variants..email_html"]
    assert "counting each repeat" in answer.text
    assert time.monotonic() - started < 2
    assert client.get("/v1/templates/freeze", headers=auth).status_code == 404


def test_a_freezing_template_stored_earlier_is_a_422_when_previewed(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    ok(
        client.put(
            "/v1/templates/old",
            json={"variants": {"": {"sms_body": "fine"}}},
            headers=auth,
        )
    )
    with runtime.sessions() as session:  # saved before the check existed
        session.execute(
            update(Template)
            .where(Template.key == "old")
            .values(variants={"": {"sms_body": FREEZE}})
        )
        session.commit()
    answer = client.post("/v1/templates/old/preview", json={}, headers=auth)
    assert answer.status_code == 422, answer.text
    assert field_of(answer) == ["variants..sms_body"]


def test_freezing_inline_content_is_a_422_for_a_notify_key(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    person(client, auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
    notify = make_key(runtime, "billing", Scope.NOTIFY)
    answer = client.post(
        "/v1/notifications",
        json={
            "topic": "news",
            "recipients": ["ann"],
            "content": {"": {"email_subject": "Hi", "email_text": FREEZE}},
        },
        headers=notify,
    )
    assert answer.status_code == 422, answer.text
    assert field_of(answer) == ["content..email_text"]


def test_a_template_that_freezes_for_one_person_fails_that_delivery_for_good(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, _ = hub
    person(
        client, auth, "vic", name="Victor", email="vic@example.com", subscribe={"news": ["email"]}
    )
    person(client, auth, "ann", name="Ann", email="ann@example.com", subscribe={"news": ["email"]})
    ok(
        client.put(
            "/v1/templates/trap",
            json={"variants": {"": {"email_subject": "Hi", "email_text": FREEZE_FOR_VICTOR}}},
            headers=auth,
        )
    )
    started = time.monotonic()
    accepted = ok(
        client.post("/v1/notifications", json={"topic": "news", "template": "trap"}, headers=auth),
        202,
    )
    body = settled(client, auth, accepted["id"])
    assert time.monotonic() - started < 10
    by_contact = {d["contact"]: d for d in body["deliveries"]["items"]}
    assert by_contact["ann"]["state"] == "sent"
    assert by_contact["vic"]["state"] == "failed"
    assert by_contact["vic"]["error_code"] == "template"
    failed = [e for e in timeline(client, auth, "vic") if e["type"] == "delivery.failed"]
    assert failed
    assert "counting each repeat" in str(failed[0])


# -- 15.4 contact data needs the contacts scope ----------------------------------------------


def test_a_preview_names_a_contact_only_for_a_contacts_key(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    person(client, auth, "ann", name="Ann Secret", attributes={"plan": "gold"})
    ok(
        client.put(
            "/v1/templates/hello",
            json={"variants": {"": {"sms_body": "Hi {{ contact.name }} {{ contact.attributes }}"}}},
            headers=auth,
        )
    )
    notify = make_key(runtime, "billing", Scope.NOTIFY)
    for named in ("ann", "nobody"):  # the same answer whether the contact exists or not
        answer = client.post("/v1/templates/hello/preview", json={"contact": named}, headers=notify)
        assert answer.status_code == 403, answer.text
        assert "contacts" in answer.json()["error"]["message"]
        assert "Secret" not in answer.text
    sample = ok(client.post("/v1/templates/hello/preview", json={}, headers=notify))
    assert sample["channels"]["sms"]["text"].startswith("Hi Sample Person")
    contacts = make_key(runtime, "crm", Scope.CONTACTS)
    named = ok(
        client.post("/v1/templates/hello/preview", json={"contact": "ann"}, headers=contacts)
    )
    assert "Ann Secret" in named["channels"]["sms"]["text"]


def test_a_metrics_key_reaches_only_metrics(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = hub
    ok(client.put("/v1/templates/hello", json={"variants": {"": {"sms_body": "Hi"}}}, headers=auth))
    scraper = make_key(runtime, "prometheus", Scope.METRICS)
    assert client.get("/metrics", headers=scraper).status_code == 200
    for method, path in (
        ("POST", "/v1/templates/hello/preview"),
        ("GET", "/v1/templates/hello"),
        ("GET", "/v1/templates"),
        ("GET", "/v1/topics/news"),
        ("GET", "/v1/topics"),
    ):
        answer = client.request(
            method, path, json={} if method == "POST" else None, headers=scraper
        )
        assert answer.status_code == 403, (path, answer.text)


# -- 15.6 no 500s ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "at", ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00"]
)
def test_explain_at_the_ends_of_the_calendar_is_a_422(
    hub: tuple[TestClient, dict[str, str], Runtime], at: str
) -> None:
    client, auth, _ = hub
    person(client, auth, "eva", email="eva@example.com", timezone="Pacific/Kiritimati")
    answer = client.get(
        "/v1/contacts/eva/explain", params={"topic": "news", "at": at}, headers=auth
    )
    assert answer.status_code == 422, answer.text
    assert field_of(answer) == ["at"]


def test_a_rule_that_never_occurs_is_a_422_when_written_and_when_dry_run(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, _ = hub
    ok(client.put("/v1/templates/offer", json={"variants": {"": {"sms_body": "Hi"}}}, headers=auth))
    base = {"name": "x", "topic": "news", "template": "offer"}
    never = {"kind": "recurring", "rrule": "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "timezone": "UTC"}
    answer = client.post("/v1/campaigns", json=base | {"schedule": never}, headers=auth)
    assert answer.status_code == 422, answer.text
    assert field_of(answer) == ["schedule"]
    # A rule whose last occurrence passes between writing the campaign and its dry run.
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)).isoformat()
    soon = {"kind": "recurring", "rrule": "FREQ=SECONDLY", "timezone": "UTC", "until": until}
    draft = ok(client.post("/v1/campaigns", json=base | {"schedule": soon}, headers=auth))
    time.sleep(3.5)  # past `until`, and past the second of grace first_run allows
    answer = client.post(f"/v1/campaigns/{draft['id']}/dry-run", headers=auth)
    assert answer.status_code == 422, answer.text
    assert field_of(answer) == ["schedule"]


def test_a_report_of_a_thousand_nested_parts_is_a_422(
    hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, _ = hub
    raw = "From: mailer-daemon@example.net\r\nContent-Type: multipart/mixed; boundary=b0\r\n\r\n"
    for level in range(1000):
        raw += f"--b{level}\r\nContent-Type: multipart/mixed; boundary=b{level + 1}\r\n\r\n"
    for depth, expected in ((1000, "nested too deeply"), (40, "nested deeper than 16")):
        cut = raw if depth == 1000 else raw[: raw.index(f"--b{depth}")]
        answer = client.post(
            "/inbound/email/bounce",
            content=cut.encode(),
            headers=auth | {"content-type": "message/rfc822"},
        )
        assert answer.status_code == 422, answer.text
        assert field_of(answer) == ["message"]
        assert expected in answer.text
