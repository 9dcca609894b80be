"""Tracking in the console, on SQLite and PostgreSQL: the topic form's two boxes (opens and
clicks of its e-mail; links in its SMS) are saved through TopicIn and read back by the API; a
new topic's first box follows the category unless the marketer touched it; a person's own
choice is on their contact page."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.domain import StaffRole
from hub.runtime import Runtime
from hub.services import staff
from tests.dispatching import ok, person

PASSWORD = "correct horse battery staple"


@pytest.fixture
def token(client: TestClient, runtime: Runtime) -> str:
    """A marketer signed in on `client`; their session's form token."""
    with runtime.sessions() as session:
        staff.create(session, "mia@acme.example", PASSWORD, StaffRole.MARKETER)
        session.commit()
    login = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
    assert login is not None
    answer = client.post(
        "/console/login",
        data={"csrf": login.group(1), "email": "mia@acme.example", "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/topics/new").text)
    assert found is not None
    return found.group(1)


def drawn(page: str) -> str:
    found = re.search(r'name="tracking_drawn" value="([^"]*)"', page)
    assert found is not None, "the new topic form does not say how it drew the box"
    return found.group(1)


def ticked(page: str, name: str) -> bool:
    found = re.search(rf'<input type="checkbox" id="{name}" name="{name}"[^>]*>', page)
    assert found is not None, f"no {name} box"
    return " checked" in found.group(0)


def form(token: str, **fields: Any) -> dict[str, Any]:
    return {
        "csrf": token,
        "name": "Orders",
        "category": "marketing",
        "audience": "all",
        "allowed_channels": ["email", "sms"],
        "allowed_frequencies": ["immediate"],
        "public": "yes",
        "cap_action": "defer",
    } | fields


def create(client: TestClient, token: str, key: str, **fields: Any) -> None:
    answer = client.post(
        "/console/topics/new", data=form(token, key=key, **fields), follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == f"/console/topics/{key}/edit?saved=created"


def stored(client: TestClient, auth: dict[str, str], key: str) -> tuple[bool, bool]:
    body = ok(client.get(f"/v1/topics/{key}", headers=auth))
    return body["tracking"], body["track_sms"]


def test_a_new_topic_form_ticks_tracking_for_marketing_and_says_so(
    client: TestClient, token: str
) -> None:
    page = client.get("/console/topics/new").text
    assert ticked(page, "tracking")
    assert not ticked(page, "track_sms")
    assert drawn(page) == "marketing:yes"
    assert "Track opens and clicks of its e-mail" in page
    assert "Off by default for transactional topics" in page
    assert "a person can always turn tracking off" in page.lower()
    assert "Rewrite links in its SMS too" in page


def test_an_untouched_box_follows_the_category_and_a_touched_one_is_kept(
    client: TestClient, auth: dict[str, str], token: str
) -> None:
    untouched = {"tracking": "yes", "tracking_drawn": "marketing:yes"}
    create(client, token, "offers", **untouched)
    assert stored(client, auth, "offers") == (True, False)
    # Transactional chosen, the box left as it was drawn for marketing: the category decides.
    create(client, token, "receipts", category="transactional", **untouched)
    assert stored(client, auth, "receipts") == (False, False)
    edit = client.get("/console/topics/receipts/edit").text
    assert not ticked(edit, "tracking")
    assert 'name="tracking_drawn"' not in edit  # an existing topic's box is only what it says

    # The marketer unticked it on a marketing topic, or ticked it for a transactional one.
    create(client, token, "quiet-news", tracking_drawn="marketing:yes")
    assert stored(client, auth, "quiet-news") == (False, False)
    create(
        client,
        token,
        "tracked-receipts",
        category="transactional",
        tracking="yes",
        tracking_drawn="transactional:",
        track_sms="yes",
    )
    assert stored(client, auth, "tracked-receipts") == (True, True)


def test_a_refused_new_form_redraws_the_box_for_the_category_chosen(
    client: TestClient, token: str
) -> None:
    answer = client.post(
        "/console/topics/new",
        data=form(
            token,
            key="Bad Key",
            category="transactional",
            tracking="yes",
            tracking_drawn="marketing:yes",
        ),
    )
    assert answer.status_code == 422
    assert not ticked(answer.text, "tracking")
    assert drawn(answer.text) == "transactional:"


def test_the_edit_form_saves_both_boxes(
    client: TestClient, auth: dict[str, str], token: str
) -> None:
    create(client, token, "news", tracking="yes", tracking_drawn="marketing:yes")
    edit = "/console/topics/news/edit"
    saved = client.post(
        edit, data=form(token, tracking="yes", track_sms="yes"), follow_redirects=False
    )
    assert saved.status_code == 303, saved.text
    assert stored(client, auth, "news") == (True, True)
    page = client.get(edit).text
    assert ticked(page, "tracking")
    assert ticked(page, "track_sms")

    cleared = client.post(edit, data=form(token), follow_redirects=False)  # both unticked
    assert cleared.status_code == 303, cleared.text
    assert stored(client, auth, "news") == (False, False)
    assert not ticked(client.get(edit).text, "tracking")


def test_the_contact_page_shows_the_persons_choice(
    client: TestClient, auth: dict[str, str], token: str
) -> None:
    person(client, auth, "ann", email="ann@example.com")
    assert (
        "<dt>Tracking</dt><dd>on (the person's choice)" in client.get("/console/contacts/ann").text
    )
    ok(client.patch("/v1/contacts/ann/preferences", json={"tracking_off": True}, headers=auth))
    assert (
        "<dt>Tracking</dt><dd>off (the person's choice)" in client.get("/console/contacts/ann").text
    )
