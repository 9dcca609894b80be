"""Who may change the audience from the console, on SQLite and PostgreSQL: a viewer reads
contacts and imports but changes nothing; every change needs the form's token, the upload
too; a profile's attributes are a table, and each change is the staff member's on the
timeline."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from hub.domain import StaffRole
from hub.runtime import Runtime
from hub.services import staff
from tests.dispatching import ok, person, timeline, topic

PASSWORD = "correct horse battery staple"
CSV = b"external_id,email\nv-1,v1@example.com\n"


def signed_in(client: TestClient, runtime: Runtime, email: str, role: StaffRole) -> str:
    """Sign `client` in as a new staff user; the form token of their session."""
    with runtime.sessions() as session:
        staff.create(session, email, PASSWORD, role)
        session.commit()
    page = client.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    answer = client.post(
        "/console/login",
        data={"csrf": token.group(1), "email": email, "password": PASSWORD},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    contacts = client.get("/console/contacts")
    found = re.search(r'name="csrf" value="([^"]+)"', contacts.text)  # the sign-out form's
    assert found is not None
    return found.group(1)


def test_a_viewer_reads_the_audience_but_changes_nothing(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    topic(client, auth, "news", allowed_channels=["email"])
    person(client, auth, "ann", email="ann@example.com", attributes={"plan": "gold", "seats": 3})
    token = signed_in(client, runtime, "vic@acme.example", StaffRole.VIEWER)

    listed = client.get("/console/contacts")
    assert listed.status_code == 200
    assert 'href="/console/contacts/ann"' in listed.text
    assert "Add a person" not in listed.text
    profile = client.get("/console/contacts/ann")
    assert profile.status_code == 200
    assert '<th scope="row">plan</th><td>gold</td>' in profile.text  # a table, not a dict
    assert "{'plan'" not in profile.text
    assert "Change details" not in profile.text
    assert client.get("/console/imports").status_code == 200

    for path in (
        "/console/contacts/new",
        "/console/contacts/ann/edit",
        "/console/contacts/ann/subscriptions/news",
        "/console/contacts/ann/preferences",
        "/console/imports/new",
    ):
        assert client.get(path).status_code == 403, path
    refused = [
        client.post("/console/contacts/new", data={"csrf": token, "external_id": "x"}),
        client.post("/console/contacts/ann/edit", data={"csrf": token, "name": "X"}),
        client.post("/console/contacts/ann/preferences", data={"csrf": token, "blocked": "sms"}),
        client.post(
            "/console/contacts/ann/subscriptions/news",
            data={"csrf": token, "status": "unsubscribed"},
        ),
        client.post("/console/imports/new", data={"csrf": token}, files={"file": ("a.csv", CSV)}),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert ok(client.get("/v1/contacts/ann", headers=auth))["name"] is None
    assert ok(client.get("/v1/contacts/v-1", headers=auth), 404)


def test_a_marketer_change_needs_the_form_token_and_is_theirs_on_the_timeline(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    topic(client, auth, "news", allowed_channels=["email"])
    person(client, auth, "ann", email="ann@example.com", subscribe={"news": ["email"]})
    token = signed_in(client, runtime, "mia@acme.example", StaffRole.MARKETER)

    forged = [
        client.post("/console/contacts/ann/edit", data={"csrf": "x", "name": "Forged"}),
        client.post("/console/imports/new", data={"csrf": "x"}, files={"file": ("a.csv", CSV)}),
    ]
    assert [r.status_code for r in forged] == [403, 403]
    assert ok(client.get("/v1/contacts/v-1", headers=auth), 404)

    saved = client.post(
        "/console/contacts/ann/edit",
        data={"csrf": token, "kind": "client", "name": "Ann", "email": "ann@example.com"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    unsubscribed = client.post(
        "/console/contacts/ann/subscriptions/news",
        data={"csrf": token, "status": "unsubscribed"},
        follow_redirects=False,
    )
    assert unsubscribed.status_code == 303
    events = timeline(client, auth, "ann")
    mine = [(e["type"], e["actor_kind"], e["actor"]) for e in events if e["source"] == "console"]
    assert mine == [
        ("subscription.changed", "staff", "mia@acme.example"),
        ("contact.updated", "staff", "mia@acme.example"),
    ]
    news = ok(client.get("/v1/contacts/ann/subscriptions/news", headers=auth))
    assert news["status"] == "unsubscribed"
    assert news["channels"] == ["email"]  # an unsubscribe keeps the channels chosen
