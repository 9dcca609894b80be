"""Campaigns that cannot fail silently, on SQLite and PostgreSQL, through the real dispatch
path to the SMTP peer: the dry run renders the template for one real person of each language
and channel and names each failing part with its line, in plain words ("the campaign's data
has no 'discount'"); scheduling and resuming are refused (409, naming the part) while a part
fails for a language the audience has; a draft's data is changed (PATCH, or the page's form)
and audited; a test send renders as the first person of the audience, goes to the tester's
address, and says whose message it is and what became of it, in the API and on the page."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db.models import AuditEntry, Delivery
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
    assert error["message"] == "the campaign's data has no 'discount' (it has offer)"
    assert error["missing"] == "data.discount"
    assert error["summary"] == (
        "ru · sms_body · line 2: the campaign's data has no 'discount' (it has offer)"
    )
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
    assert body["details"][0]["missing"] == "data.discount"
    for words in ("ru", "sms_body", "line 2", "the campaign's data has no 'discount'"):
        assert words in body["message"], body["message"]
    assert body["message"].endswith("Fix the template or the campaign's data, then try again.")
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
        "fr · email_subject (the default variant) · line 2: "
        "the campaign's data has no 'code' (it has offer)"
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
    """Nobody in the audience: the test renders for a stand-in with the tester's name."""
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
        "failed: template: the campaign's data has no 'discount' in email_subject (line 1)"
    )
    assert (failed["variant"], failed["part"], failed["line"]) == ("", "email_subject", 1)
    assert failed["rendered_for"] is None
    assert failed["whose"] == (
        "nobody is in the audience: the message a stand-in with no attributes gets, "
        "sent to mia@acme.example"
    )
    assert smtp.received == []

    good = campaign(client, auth, data={"discount": "20%", "offer": "Coats"})
    answer = client.post(
        f"/v1/campaigns/{good['id']}/test",
        json={"email": "mia@acme.example", "name": "Mia"},
        headers=auth,
    )
    sent = ok(answer, 202)
    assert (sent["outcome"], sent["state"]) == ("sent", "sent")  # not "delivered": no report
    assert sent["message"] == "accepted by the mail server (sent)"
    assert sent["part"] is None
    (mail,) = smtp.wait_for(1)
    assert mail.message["Subject"] == "20% off, Mia"


def test_a_test_renders_as_the_first_person_of_the_audience(wired: Wired) -> None:
    """The dry run renders for real people; the test does too, so what passed one passes the
    other: the first person's name, language and attributes, sent to the tester's address."""
    client, auth, admin, runtime, smtp = wired
    ru = {"email_subject": "{{ contact.attributes.plan }}: {{ contact.name }}"}
    with_plan = template(GOOD_RU_SMS)
    with_plan["variants"]["ru"] |= ru
    ok(client.put("/v1/templates/offer", json=with_plan, headers=admin))
    person(
        client,
        auth,
        "ada",
        name="Ada Lovelace",
        email="ada@example.com",
        locale="ru",
        attributes={"plan": "gold"},
        subscribe={"offers": ["email"]},
    )
    person(
        client, auth, "bob", name="Bob", email="bob@example.com", subscribe={"offers": ["email"]}
    )
    draft = campaign(client, auth)
    assert dry_run(client, auth, draft["id"])["render_errors"] == []
    body = {"email": "mia@acme.example", "name": "Mia"}
    sent = ok(client.post(f"/v1/campaigns/{draft['id']}/test", json=body, headers=auth), 202)
    assert sent["outcome"] == "sent", sent
    assert sent["rendered_for"] == "ada"
    assert sent["whose"] == ("the message Ada Lovelace (ada) would get, sent to mia@acme.example")
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ("mia@acme.example",)  # never Ada
    assert mail.message["Subject"] == "gold: Ada Lovelace"  # her variant, attributes, name
    with runtime.reads() as session:  # and Ada herself was sent nothing
        mailed = session.scalars(select(Delivery.address)).all()
    assert mailed == ["mia@acme.example"]
    # Nothing of Ada was copied onto the tester's stand-in, nor its timeline: erasing her
    # leaves no trace of her there.
    stand_in = ok(client.get("/v1/contacts/staff:mia@acme.example", headers=auth))
    assert (stand_in["name"], stand_in["locale"], stand_in["attributes"]) == ("Mia", None, {})
    timeline = ok(client.get("/v1/contacts/staff:mia@acme.example/timeline", headers=auth))
    assert "gold" not in str(timeline)
    assert "Ada" not in str(timeline)


def test_a_drafts_data_is_changed_and_audited_and_then_renders(wired: Wired) -> None:
    client, auth, _, runtime, _ = wired
    audience(client, auth)
    draft = campaign(client, auth, data={})
    assert {e["missing"] for e in dry_run(client, auth, draft["id"])["render_errors"]} == {
        "data.offer",
        "data.discount",
    }
    here = f"/v1/campaigns/{draft['id']}"
    bad = client.patch(here, json={"data": ["not", "an", "object"]}, headers=auth)
    assert bad.status_code == 422
    assert "data" in bad.text
    unknown = client.patch(here, json={"data": {}, "name": "x"}, headers=auth)
    assert unknown.status_code == 422
    changed = ok(client.patch(here, json={"data": {"offer": "20%", "discount": 20}}, headers=auth))
    assert changed["data"] == {"offer": "20%", "discount": 20}
    assert dry_run(client, auth, draft["id"])["render_errors"] == []
    with runtime.reads() as session:
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.resource == "campaign", AuditEntry.action == "updated"
            )
        ).one()
    assert (entry.action, entry.actor, entry.resource_key) == (
        "updated",
        "marketing",
        str(draft["id"]),
    )
    assert (entry.before, entry.after) == (
        {"data": {}},
        {"data": {"offer": "20%", "discount": 20}},
    )
    ok(client.post(f"{here}/schedule", headers=auth))
    late = client.patch(here, json={"data": {}}, headers=auth)
    assert late.status_code == 409, late.text
    assert "only a draft" in late.json()["error"]["message"]
    assert client.patch("/v1/campaigns/999999", json={"data": {}}, headers=auth).status_code == 404


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
    client, auth, _, runtime, smtp = wired
    audience(client, auth)
    draft = campaign(client, auth)
    token = signed_in(client, runtime, "mia@acme.example")
    here = f"/console/campaigns/{draft['id']}"

    dry = client.post(f"{here}/dry-run", data={"csrf": token})
    assert dry.status_code == 200
    assert "ru · sms_body · line 2: the campaign&#39;s data has no &#39;discount&#39;" in dry.text
    assert '<a href="#data" class="fix-data">Add discount to the campaign\'s data</a>' in dry.text
    assert (
        "<ul>" not in dry.text.split("render-errors", 1)[1].split("</div>", 1)[0]
    )  # one: a sentence
    refused = client.post(f"{here}/schedule", data={"csrf": token})
    assert refused.status_code == 409
    assert "Not scheduled: the template does not render for 1 person" in refused.text
    assert "sms_body" in refused.text
    assert ok(client.get(f"/v1/campaigns/{draft['id']}", headers=auth))["state"] == "draft"

    # The first person of the audience is s0, who reads the ru variant: its e-mail text
    # needs the offer this campaign's data lacks.
    empty = campaign(client, auth, data={})
    there = f"/console/campaigns/{empty['id']}"
    tested = client.post(f"{there}/test", data={"csrf": token}, follow_redirects=False)
    assert tested.status_code == 303
    location = tested.headers["location"]
    assert re.fullmatch(rf"{there}\?test=\d+#test", location), location
    shown = client.get(location)
    outcome = re.search(
        r'<div id="test"[^>]*role="alert">\s*<p>(.*?)</p>\s*<p class="whose">(.*?)</p>',
        shown.text,
        re.S,
    )
    assert outcome is not None, shown.text
    assert outcome.group(1) == (
        "The test: failed: template: the campaign&#39;s data has no &#39;offer&#39; "
        "in email_text of the ru variant (line 1)."
    )
    whose = outcome.group(2)
    assert whose.startswith(
        "The message Shopper 0 (s0) would get, sent to mia@acme.example. <a href"
    ), whose
    assert (
        f'href="/console/templates/edit?key=offer&amp;locale=ru&amp;part=email_text'
        f'&amp;line=1&amp;campaign={empty["id"]}#email_text">Edit email_text of the ru variant'
    ) in whose
    assert smtp.received == []
    # Another campaign's test, or any notification, is not shown as this one's.
    assert 'id="test"' not in client.get(f"{here}?test=1").text
    number = location.split("test=")[1].split("#")[0]
    assert 'id="test"' not in client.get(f"{here}?test={number}").text


def test_the_console_edits_a_drafts_data_and_shows_a_bad_one_back(wired: Wired) -> None:
    client, auth, _, runtime, _ = wired
    audience(client, auth)
    draft = campaign(client, auth, data={"offer": "20%"})
    token = signed_in(client, runtime, "mia@acme.example")
    here = f"/console/campaigns/{draft['id']}"
    page = client.get(here).text
    assert '<textarea id="data-json" name="data"' in page
    assert "{\n  &#34;offer&#34;: &#34;20%&#34;\n}</textarea>" in page  # pretty JSON

    typed = '{"offer": "25%",, "discount": 5}'
    refused = client.post(f"{here}/data", data={"csrf": token, "data": typed})
    assert refused.status_code == 422
    assert "The data is not JSON: Expecting property name enclosed in double quotes" in (
        refused.text
    )
    assert "(line 1, column 17)" in refused.text
    assert 'aria-invalid="true">{&#34;offer&#34;: &#34;25%&#34;,, &#34;discount&#34;: 5}' in (
        refused.text
    )
    listed = client.post(f"{here}/data", data={"csrf": token, "data": "[1, 2]"})
    assert listed.status_code == 422
    assert "The data: Input should be a valid dictionary." in listed.text
    assert ok(client.get(f"/v1/campaigns/{draft['id']}", headers=auth))["data"] == {"offer": "20%"}

    saved = client.post(
        f"{here}/data",
        data={"csrf": token, "data": typed.replace(",,", ",")},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == f"{here}?saved=true#data"
    assert "Data saved." in client.get(saved.headers["location"]).text
    after = ok(client.get(f"/v1/campaigns/{draft['id']}", headers=auth))
    assert after["data"] == {"offer": "25%", "discount": 5}
    with runtime.reads() as session:
        entry = session.scalars(
            select(AuditEntry).where(
                AuditEntry.resource == "campaign", AuditEntry.action == "updated"
            )
        ).one()
    assert (entry.actor, entry.after) == ("mia@acme.example", {"data": after["data"]})
    forged = client.post(f"{here}/data", data={"csrf": "nope", "data": "{}"})
    assert forged.status_code in (400, 403)

    dry = client.post(f"{here}/dry-run", data={"csrf": token})
    assert "Every language \u00d7 channel renders: ready to schedule." in dry.text
    ok(client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth))
    page = client.get(here).text
    assert '<textarea id="data-json"' not in page  # no longer a draft: shown, not edited
    assert '<pre class="data">{\n  &#34;discount&#34;: 5,' in page
    late = client.post(f"{here}/data", data={"csrf": token, "data": "{}"}, follow_redirects=False)
    assert late.status_code == 303
    assert (
        "only+a+draft" in late.headers["location"] or "only%20a%20draft" in late.headers["location"]
    )
