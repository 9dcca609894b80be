"""Issue 21, item 3: after unsubscribing, a person may say why. The answer's form post, on
SQLite and PostgreSQL: recorded once per unsubscribe as `refusal.reason` (on the timeline and
in the outbox for event endpoints), refused with a bad form token (403), with a note over 500
characters (422 naming `note`) or an unknown reason (422 naming `reason`)."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.campaigns import report
from hub.db.models import Contact, EventMessage
from hub.preferences.tokens import Purpose
from hub.runtime import Runtime
from hub.services import unsubscribes
from hub.settings import Settings
from tests.conftest import TEST_SECRET
from tests.dispatching import ok, person, timeline, topic

Hub = tuple[TestClient, dict[str, str], Runtime]


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The event endpoint below listens on loopback: never contacted, its outbox row is read.
    return Settings(database_url=database_url, secret_key=TEST_SECRET, webhook_allow_private=True)


@pytest.fixture
def hub(admin_hub: Hub) -> Hub:
    client, auth, _ = admin_hub
    topic(client, auth, "offers", name="Offers")
    topic(client, auth, "news", name="News")
    person(
        client,
        auth,
        "ann",
        email="ann@example.com",
        subscribe={"offers": ["email"], "news": ["email"]},
    )
    return admin_hub


def link(runtime: Runtime, purpose: Purpose, topic_key: str | None = None) -> str:
    """A personal link of ann's, signed as the messages sign them."""
    with runtime.reads() as session:
        ann = session.scalars(select(Contact).where(Contact.external_id == "ann")).one()
        signer = unsubscribes.signer(runtime.settings)
        token = signer.sign(purpose, ann.id, topic_key, link_key=ann.link_key)
    prefix = "preferences" if purpose is Purpose.PREFERENCES else "unsubscribe"
    return f"/{prefix}/{token}"


def csrf_of(page: str, action: str) -> str:
    """The form token of the form on `page` that posts to `action`."""
    found = re.search(
        rf'<form method="post" action="{re.escape(action)}"[^>]*>\s*'
        r'<input type="hidden" name="csrf" value="([^"]+)"',
        html.unescape(page),
    )
    assert found, f"no form posting to {action}"
    return found.group(1)


def reasons(client: TestClient, auth: dict[str, str]) -> list[dict[str, Any]]:
    return [e for e in timeline(client, auth, "ann") if e["type"] == "refusal.reason"]


def leave_offers_on_the_preferences_page(client: TestClient, page_path: str) -> str:
    """Untick Offers and save; the page that answers."""
    form = {"csrf": csrf_of(client.get(page_path).text, page_path)}
    form |= {"topic:news": "on", "channels:news": "email", "channels:offers": "email"}
    saved = client.post(page_path, data=form)
    assert saved.status_code == 200
    said: str = saved.text
    return said


def test_a_reason_given_on_the_preferences_page_is_on_the_timeline_once(hub: Hub) -> None:
    client, auth, runtime = hub
    body = {"url": "http://127.0.0.1:9/crm", "event_types": ["refusal.reason"]}
    ok(client.post("/v1/event-endpoints", json=body, headers=auth), 201)
    page_path = link(runtime, Purpose.PREFERENCES)
    before = client.get(page_path).text
    assert "/why" not in before  # asked only after an unsubscribe
    answered = leave_offers_on_the_preferences_page(client, page_path)
    assert "Would you tell us why?" in answered
    assert '<input type="hidden" name="topic" value="offers">' in answered
    why = f"{page_path}/why"
    form = {
        "csrf": csrf_of(answered, why),
        "topic": "offers",
        "reason": "too_many",
        # Decomposed é, a bell and a line break: stored as NFC, the control character gone.
        "note": "  I get three a day, cafe\u0301\u0007\nplease ",
    }
    thanked = client.post(why, data=form)
    assert thanked.status_code == 200
    assert "Thank you for telling us" in thanked.text
    (event,) = reasons(client, auth)
    assert event["reason"] == "too_many"
    assert event["topic"] == "offers"
    assert event["changes"] == {"topic": "offers", "note": "I get three a day, café please"}
    assert event["actor_kind"] == "self_service"

    again = client.post(why, data=form)  # a reload, a double click
    assert again.status_code == 200
    assert "already have your answer" in again.text
    assert len(reasons(client, auth)) == 1
    with runtime.reads() as session:
        queued = session.scalars(
            select(EventMessage.event_type).where(EventMessage.event_type == "refusal.reason")
        ).all()
    assert queued == ["refusal.reason"]  # event endpoints hear of it, through the outbox


def test_a_bad_form_token_is_refused_and_records_nothing(hub: Hub) -> None:
    client, auth, runtime = hub
    page_path = link(runtime, Purpose.PREFERENCES)
    answered = leave_offers_on_the_preferences_page(client, page_path)
    why = f"{page_path}/why"
    good = csrf_of(answered, why)
    other_form = csrf_of(answered, page_path)  # the preferences form's own token
    for csrf in ("", "forged", other_form, good[:-2] + "xx"):
        refused = client.post(why, data={"csrf": csrf, "topic": "offers", "reason": "other"})
        assert refused.status_code == 403, csrf
    evil = client.post(
        why,
        data={"csrf": good, "topic": "offers", "reason": "other"},
        headers={"origin": "https://evil.example"},
    )
    assert evil.status_code == 403
    assert reasons(client, auth) == []


def test_bad_answers_are_422_naming_the_field_and_record_nothing(hub: Hub) -> None:
    client, auth, runtime = hub
    page_path = link(runtime, Purpose.PREFERENCES)
    answered = leave_offers_on_the_preferences_page(client, page_path)
    why = f"{page_path}/why"
    csrf = csrf_of(answered, why)
    base = {"csrf": csrf, "topic": "offers"}

    long = client.post(why, data=base | {"reason": "too_many", "note": "x" * 501})
    assert long.status_code == 422
    assert '<li data-field="note"><a href="#why-note">' in long.text
    assert 'id="why-note"' in long.text
    assert 'aria-invalid="true"' in long.text

    unknown = client.post(why, data=base | {"reason": "because"})
    assert unknown.status_code == 422
    assert '<li data-field="reason"><a href="#why-reason">' in unknown.text
    assert 'data-field="note"' not in unknown.text
    assert reasons(client, auth) == []

    # 600 code points that NFC makes 300 characters: within the limit as stored.
    composed = client.post(why, data=base | {"note": "e\u0301" * 300})
    assert composed.status_code == 200
    (event,) = reasons(client, auth)
    assert event["reason"] == "other"  # a note alone answers "other"
    assert event["changes"]["note"] == "é" * 300


def test_sending_nothing_records_nothing(hub: Hub) -> None:
    client, auth, runtime = hub
    page_path = link(runtime, Purpose.PREFERENCES)
    why = f"{page_path}/why"
    csrf = csrf_of(leave_offers_on_the_preferences_page(client, page_path), why)
    skipped = client.post(why, data={"csrf": csrf, "topic": "offers", "note": "  \u0007 "})
    assert skipped.status_code == 200
    assert "you are unsubscribed either way" in skipped.text
    assert reasons(client, auth) == []


def test_no_reason_is_kept_for_an_unsubscribe_that_did_not_happen(hub: Hub) -> None:
    client, auth, runtime = hub
    page_path = link(runtime, Purpose.PREFERENCES)
    why = f"{page_path}/why"
    # A token for the /why path, but ann left nothing: still subscribed to both topics.
    csrf = csrf_of(leave_offers_on_the_preferences_page(client, page_path), why)
    for topic_key in ("news", "nosuch"):
        gone = client.post(why, data={"csrf": csrf, "topic": topic_key, "reason": "other"})
        assert gone.status_code == 409, topic_key
    assert reasons(client, auth) == []


def test_the_unsubscribe_links_confirmation_page_asks_and_a_mail_client_is_not_asked(
    hub: Hub,
) -> None:
    client, auth, runtime = hub
    path = link(runtime, Purpose.UNSUBSCRIBE, "offers")
    asking = client.get(path).text
    assert '<input type="hidden" name="from" value="page">' in asking
    mail_client = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert mail_client.status_code == 200
    assert "/why" not in mail_client.text
    on_page = client.post(path, data={"List-Unsubscribe": "One-Click", "from": "page"})
    assert "Would you tell us why?" in on_page.text
    why = f"{path}/why"
    # The link names its topic: a `topic` in the post cannot point the answer elsewhere.
    form = {"csrf": csrf_of(on_page.text, why), "reason": "never_signed_up", "topic": "news"}
    assert client.post(why, data=form).status_code == 200
    (event,) = reasons(client, auth)
    assert (event["topic"], event["reason"]) == ("offers", "never_signed_up")
    assert event["changes"] == {"topic": "offers", "note": None}


def test_a_link_for_everything_records_a_reason_with_no_topic(hub: Hub) -> None:
    client, auth, runtime = hub
    path = link(runtime, Purpose.UNSUBSCRIBE)
    on_page = client.post(path, data={"List-Unsubscribe": "One-Click", "from": "page"})
    assert on_page.status_code == 200
    why = f"{path}/why"
    form = {"csrf": csrf_of(on_page.text, why), "reason": "not_relevant", "note": "Moved away"}
    assert client.post(why, data=form).status_code == 200
    (event,) = reasons(client, auth)
    assert event["topic"] is None
    assert event["changes"] == {"topic": None, "note": "Moved away"}


def test_the_campaign_report_counts_each_persons_latest_answer_about_its_topic(hub: Hub) -> None:
    client, _, runtime = hub
    page_path = link(runtime, Purpose.PREFERENCES)
    why = f"{page_path}/why"
    csrf = csrf_of(leave_offers_on_the_preferences_page(client, page_path), why)
    sent = client.post(why, data={"csrf": csrf, "topic": "offers", "reason": "too_many"})
    assert sent.status_code == 200
    with runtime.reads() as session:
        ann = session.scalars(select(Contact.id).where(Contact.external_id == "ann")).one()
        about_offers = report.reasons_of(session, [ann], topic_key="offers")
        about_news = report.reasons_of(session, [ann], topic_key="news")
        nobody = report.reasons_of(session, [], topic_key="offers")
    assert about_offers == [report.LeftBecause("too_many", "too many messages", 1)]
    assert about_news == []  # her answer was about Offers
    assert nobody == []
