"""Campaigns that cannot fail silently, on SQLite and PostgreSQL, through the real dispatch
path to the SMTP peer: the dry run renders the template for one real person of each language
and channel and names each failing part with its line; scheduling and resuming are refused
(409, naming the part) while a part fails for a language the audience has; a test send says
what became of it, in the API and on the console page."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.domain import Scope, StaffRole
from hub.runtime import Runtime
from hub.services import staff
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import hub_running, ok, person, topic
from tests.peers.smtp import SmtpPeer

Wired = tuple[TestClient, dict[str, str], dict[str, str], Runtime, SmtpPeer]
PASSWORD = "correct horse battery staple"
GOOD_RU_SMS = "\n".join(["Привет!", "Дарим {{ data.offer }}"])
BROKEN_RU_SMS = "\n".join(["Привет!", "Дарим {{ data.discount }}%"])  # line 2: no such data


def template(ru_sms: str = BROKEN_RU_SMS, **default: str) -> dict[str, Any]:
    return {
        "variants": {
            "": {
                "email_subject": "Hi {{ contact.name }}",
                "email_text": "{{ data.offer }} for you",
                "sms_body": "{{ data.offer }}, {{ contact.name }}",
            }
            | default,
            "ru": {
                "email_subject": "Привет, {{ contact.name }}",
                "email_text": "{{ data.offer }}",
                "sms_body": ru_sms,
            },
        }
    }


@pytest.fixture
def wired(database_url: str) -> Iterator[Wired]:
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
            auth = make_key(runtime, "marketing", Scope.CAMPAIGNS, Scope.CONTACTS)
            admin = make_key(runtime, "admin", Scope.ADMIN)
            topic(client, admin, "offers", allowed_channels=["email", "sms"])
            ok(client.put("/v1/templates/offer", json=template(), headers=admin))
            yield client, auth, admin, runtime, smtp


def audience(client: TestClient, auth: dict[str, str]) -> None:
    """s0 speaks ru (e-mail and SMS), s1 en (e-mail and SMS), s2 fr (e-mail only); en and fr
    have no variant of their own: the default serves them."""
    for i, (locale, channels) in enumerate(
        [("ru", ["email", "sms"]), ("en", ["email", "sms"]), ("fr", ["email"])]
    ):
        person(
            client,
            auth,
            f"s{i}",
            name=f"Shopper {i}",
            email=f"s{i}@example.com",
            phone=f"+4915112345{i:03d}",
            locale=locale,
            subscribe={"offers": channels},
        )


def campaign(client: TestClient, auth: dict[str, str], **fields: Any) -> Any:
    body = {"name": "Winter sale", "topic": "offers", "template": "offer", "data": {"offer": "20%"}}
    return ok(client.post("/v1/campaigns", json=body | fields, headers=auth), 201)


def dry_run(client: TestClient, auth: dict[str, str], campaign_id: int) -> Any:
    return ok(client.post(f"/v1/campaigns/{campaign_id}/dry-run", headers=auth))


def test_a_part_that_fails_for_a_language_of_the_audience_is_listed_and_blocks_scheduling(
    wired: Wired,
) -> None:
    client, auth, admin, _, _ = wired
    audience(client, auth)
    draft = campaign(client, auth)

    dry = dry_run(client, auth, draft["id"])
    (error,) = dry["render_errors"]
    assert error["locale"] == "ru"
    assert error["channel"] == "sms"
    assert error["field"] == "template.ru.sms_body"
    assert (error["part"], error["line"], error["people"], error["contact"]) == (
        "sms_body",
        2,
        1,
        "s0",
    )
    assert error["message"] == "'dict object' has no attribute 'discount'"
    assert error["summary"] == "ru · sms_body · line 2: 'dict object' has no attribute 'discount'"
    # It still counts: the deliveries are there, only the render fails.
    assert dry["audience"] == 3
    assert sum(dry["send"].values()) + sum(dry["deferred"].values()) == 5
    shown = {(r["locale"], r["channel"]): r for r in dry["renders"]}
    assert set(shown) == {("ru", "email"), ("en", "email"), ("en", "sms"), ("fr", "email")}
    assert shown["ru", "email"]["subject"] == "Привет, Shopper 0"
    assert shown["fr", "email"]["subject"] == "Hi Shopper 2"  # the default variant serves fr
    assert shown["en", "sms"]["text"] == "20%, Shopper 1"
    assert (shown["en", "sms"]["length"], shown["en", "sms"]["segments"]) == (14, 1)

    refused = client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth)
    assert refused.status_code == 409, refused.text
    body = refused.json()["error"]
    assert body["code"] == "template_does_not_render"
    assert [d["field"] for d in body["details"]] == ["template.ru.sms_body"]
    assert body["details"][0]["line"] == 2
    for words in ("ru", "sms_body", "line 2", "'dict object' has no attribute 'discount'"):
        assert words in body["message"], body["message"]
    still = ok(client.get(f"/v1/campaigns/{draft['id']}", headers=auth))
    assert (still["state"], still["next_run_at"], still["runs"]) == ("draft", None, [])

    ok(client.put("/v1/templates/offer", json=template(GOOD_RU_SMS), headers=admin))
    assert dry_run(client, auth, draft["id"])["render_errors"] == []
    scheduled = ok(client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth))
    assert scheduled["state"] in ("scheduled", "sending")


def test_the_default_variant_is_checked_for_the_languages_it_serves(wired: Wired) -> None:
    client, auth, admin, _, _ = wired
    audience(client, auth)
    broken = template(GOOD_RU_SMS, email_subject="Hi\n{{ contact.name }} {{ data.code.upper() }}")
    ok(client.put("/v1/templates/offer", json=broken, headers=admin))
    draft = campaign(client, auth)
    errors = dry_run(client, auth, draft["id"])["render_errors"]
    assert {(e["locale"], e["channel"]) for e in errors} == {("en", "email"), ("fr", "email")}
    assert {e["field"] for e in errors} == {"template..email_subject"}
    assert {e["variant"] for e in errors} == {""}
    fr = next(e for e in errors if e["locale"] == "fr")
    assert fr["summary"] == (
        "fr · email_subject (the default variant) · line 2: 'dict object' has no attribute 'code'"
    )
    refused = client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth)
    assert refused.status_code == 409
    assert "2 people" in refused.json()["error"]["message"]


def test_a_variant_nobody_in_the_audience_reads_does_not_block(wired: Wired) -> None:
    client, auth, admin, _, _ = wired
    audience(client, auth)
    with_de = template(GOOD_RU_SMS)
    with_de["variants"]["de"] = {"email_subject": "Hallo {{ data.nothing }}", "email_text": "x"}
    ok(client.put("/v1/templates/offer", json=with_de, headers=admin))
    draft = campaign(client, auth)
    dry = dry_run(client, auth, draft["id"])
    assert dry["render_errors"] == []
    assert "de" not in {r["locale"] for r in dry["renders"]}
    scheduled = ok(client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth))
    assert scheduled["state"] in ("scheduled", "sending")


def test_resuming_is_refused_while_what_it_would_send_fails(wired: Wired) -> None:
    client, auth, admin, _, _ = wired
    audience(client, auth)
    ok(client.put("/v1/templates/offer", json=template(GOOD_RU_SMS), headers=admin))
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    planned = campaign(client, auth, schedule={"kind": "at", "at": later})
    ok(client.post(f"/v1/campaigns/{planned['id']}/schedule", headers=auth))
    ok(client.post(f"/v1/campaigns/{planned['id']}/pause", headers=auth))
    ok(client.put("/v1/templates/offer", json=template(BROKEN_RU_SMS), headers=admin))
    refused = client.post(f"/v1/campaigns/{planned['id']}/resume", headers=auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["details"][0]["field"] == "template.ru.sms_body"
    assert refused.json()["error"]["message"].startswith("Not resumed:")
    assert ok(client.get(f"/v1/campaigns/{planned['id']}", headers=auth))["state"] == "paused"
    ok(client.put("/v1/templates/offer", json=template(GOOD_RU_SMS), headers=admin))
    resumed = ok(client.post(f"/v1/campaigns/{planned['id']}/resume", headers=auth))
    assert resumed["state"] == "scheduled"


def test_a_test_send_reports_what_became_of_it(wired: Wired) -> None:
    client, auth, admin, _, smtp = wired
    subject = {"email_subject": "{{ data.discount }} off, {{ contact.name }}"}
    ok(client.put("/v1/templates/offer", json=template(GOOD_RU_SMS, **subject), headers=admin))
    broken = campaign(client, auth, data={})
    answer = client.post(
        f"/v1/campaigns/{broken['id']}/test", json={"email": "mia@acme.example"}, headers=auth
    )
    assert answer.status_code == 202, answer.text
    failed = answer.json()
    assert (failed["outcome"], failed["state"]) == ("failed", "failed")
    assert failed["message"] == (
        "failed: template: 'dict object' has no attribute 'discount' in email_subject (line 1)"
    )
    assert smtp.received == []

    good = campaign(client, auth, data={"discount": "20%", "offer": "Coats"})
    answer = client.post(
        f"/v1/campaigns/{good['id']}/test",
        json={"email": "mia@acme.example", "name": "Mia"},
        headers=auth,
    )
    delivered = ok(answer, 202)
    assert delivered["outcome"] == "delivered"
    assert delivered["message"] == "delivered to mia@acme.example (accepted by the mail server)"
    (mail,) = smtp.wait_for(1)
    assert mail.message["Subject"] == "20% off, Mia"


def test_a_test_still_queued_says_so(client: TestClient, runtime: Runtime) -> None:
    """No workers run here: nothing is delivered, and the answer does not pretend it was."""
    auth = make_key(runtime, "marketing", Scope.CAMPAIGNS, Scope.ADMIN)
    topic(client, auth, "offers", allowed_channels=["email"])
    ok(client.put("/v1/templates/offer", json=template(GOOD_RU_SMS), headers=auth))
    draft = campaign(client, auth)
    body = {"email": "mia@acme.example", "wait": 0.3}
    answer = ok(client.post(f"/v1/campaigns/{draft['id']}/test", json=body, headers=auth), 202)
    assert answer["outcome"] == "pending"
    number = answer["notification_id"]
    assert answer["message"] == f"still queued after 0.3 s: see notification {number}"
    too_long = client.post(
        f"/v1/campaigns/{draft['id']}/test", json=body | {"wait": 31}, headers=auth
    )
    assert too_long.status_code == 422
    assert "wait" in too_long.text


def signed_in(client: TestClient, runtime: Runtime, email: str) -> str:
    """Sign `client` in as a new marketer; the form token of their session."""
    with runtime.sessions() as session:
        staff.create(session, email, PASSWORD, StaffRole.MARKETER)
        session.commit()
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
    assert token is not None
    form = {"csrf": token.group(1), "email": email, "password": PASSWORD}
    answer = client.post("/console/login", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/campaigns").text)
    assert found is not None
    return found.group(1)


def test_the_console_refuses_to_schedule_and_tells_the_test_sends_truth(wired: Wired) -> None:
    client, auth, admin, runtime, smtp = wired
    audience(client, auth)
    draft = campaign(client, auth)
    token = signed_in(client, runtime, "mia@acme.example")
    here = f"/console/campaigns/{draft['id']}"

    dry = client.post(f"{here}/dry-run", data={"csrf": token})
    assert dry.status_code == 200
    assert "ru · sms_body · line 2: &#39;dict object&#39; has no attribute &#39;discount&#39;" in (
        dry.text
    )
    refused = client.post(f"{here}/schedule", data={"csrf": token})
    assert refused.status_code == 409
    assert "Not scheduled: the template does not render for 1 person" in refused.text
    assert "sms_body" in refused.text
    assert ok(client.get(f"/v1/campaigns/{draft['id']}", headers=auth))["state"] == "draft"

    subject = {"email_subject": "{{ data.discount }} off"}
    ok(client.put("/v1/templates/offer", json=template(GOOD_RU_SMS, **subject), headers=admin))
    tested = client.post(f"{here}/test", data={"csrf": token}, follow_redirects=False)
    assert tested.status_code == 303
    location = tested.headers["location"]
    assert re.fullmatch(rf"{here}\?test=\d+#test", location), location
    shown = client.get(location)
    outcome = re.search(r'<div id="test"[^>]*role="alert">\s*<p>(.*?)</p>', shown.text, re.S)
    assert outcome is not None, shown.text
    assert outcome.group(1) == (
        "The test: failed: template: &#39;dict object&#39; has no attribute "
        "&#39;discount&#39; in email_subject (line 1)."
    )
    assert "A test was sent" not in shown.text
    assert smtp.received == []
    # Another campaign's test, or any notification, is not shown as this one's.
    other = campaign(client, auth)
    assert 'id="test"' not in client.get(f"/console/campaigns/{other['id']}?test=1").text
