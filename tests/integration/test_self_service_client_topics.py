"""Issue 21, item 2, on the preferences page: an employee picks the client topics and whose
clients each is about, on SQLite and PostgreSQL. The five show before their rows exist (a GET
makes none); ticking one makes its row and a subscription with the scope chosen; "all clients"
is offered only to an employee whose staff account is an admin or marketer, and a forged
`all` is an error naming the field that changes nothing. A client never sees them."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.db.models import Contact, StaffUser, Subscription, Topic
from hub.domain import ClientTopic, StaffRole
from hub.preferences.tokens import Purpose
from hub.runtime import Runtime
from hub.services import client_topics, staff, unsubscribes
from tests.dispatching import ok, person, timeline, topic
from tests.integration.test_refusal_reasons import csrf_of

REPLIES, REFUSALS = ClientTopic.REPLIES.value, ClientTopic.REFUSALS.value
HEADING = "About the clients you look after"
NAMES = [client_topics.definition(key.value).name for key in ClientTopic]  # type: ignore[union-attr]


@pytest.fixture
def people(client: TestClient, auth: dict[str, str]) -> tuple[TestClient, dict[str, str]]:
    """Anna and Boris are employees (Boris's staff account may be linked in a test); Olga is
    a client. Offers is an ordinary topic for everyone."""
    topic(client, auth, "offers", name="Offers", allowed_channels=["email"])
    ok(client.put("/v1/teams/north", json={"name": "North"}, headers=auth))
    for name in ("anna", "boris"):
        person(
            client,
            auth,
            name,
            kind="employee",
            name=name.title(),
            email=f"{name}@corp.example",
            teams=["north"],
        )
    person(client, auth, "olga", name="Olga", email="olga@example.com", owner="anna")
    return client, auth


def page_of(runtime: Runtime, external_id: str) -> str:
    """The person's own preferences link, signed as the messages sign it."""
    with runtime.reads() as session:
        contact = session.scalars(select(Contact).where(Contact.external_id == external_id)).one()
        signer = unsubscribes.signer(runtime.settings)
        token = signer.sign(Purpose.PREFERENCES, contact.id, None, link_key=contact.link_key)
    return f"/preferences/{token}"


def client_topic_rows(runtime: Runtime) -> list[str]:
    with runtime.reads() as session:
        query = select(Topic.key).where(Topic.key.in_(client_topics.KEYS)).order_by(Topic.key)
        return list(session.scalars(query))


def offered(text: str, key: str) -> tuple[list[str], str | None]:
    """The "whose clients" options of a topic on the page, and the one selected."""
    found = re.search(
        rf'<select id="scope-{re.escape(key)}" name="scope:{key}">(.*?)</select>', text, re.S
    )
    assert found, f"no scope choice for {key}"
    options = re.findall(r'<option value="([^"]+)"( selected)?>', found.group(1))
    chosen = [value for value, selected in options if selected]
    return [value for value, _ in options], (chosen[0] if chosen else None)


def save(client: TestClient, path: str, fields: dict[str, str]) -> tuple[int, str]:
    form = {"csrf": csrf_of(client.get(path).text, path)} | fields
    answer = client.post(path, data=form)
    return answer.status_code, html.unescape(answer.text)


def subscription(client: TestClient, auth: dict[str, str], who: str, key: str) -> dict[str, Any]:
    found: dict[str, Any] = ok(client.get(f"/v1/contacts/{who}/subscriptions/{key}", headers=auth))
    return found


def link_staff(runtime: Runtime, email: str, role: StaffRole, external_id: str) -> None:
    with runtime.sessions() as session:
        user = staff.create(session, email, staff.generated_password(), role)
        employee = session.scalars(select(Contact).where(Contact.external_id == external_id))
        user.contact_id = employee.one().id
        session.commit()


def test_a_clients_page_has_no_client_topics(
    people: tuple[TestClient, dict[str, str]], runtime: Runtime
) -> None:
    client, auth = people
    # Anna's subscription makes the replies topic's row: a row, public, is still not Olga's.
    body = {"channels": ["email"], "scope": "mine"}
    ok(client.put(f"/v1/contacts/anna/subscriptions/{REPLIES}", json=body, headers=auth))
    assert client_topic_rows(runtime) == [REPLIES]

    answer = client.get(page_of(runtime, "olga"))
    assert answer.status_code == 200
    text = html.unescape(answer.text)
    assert "<legend>Offers</legend>" in text
    assert HEADING not in text
    assert "clients." not in text
    assert not any(name in text for name in NAMES)


def test_an_employees_page_lists_all_five_after_the_others_and_the_get_writes_nothing(
    people: tuple[TestClient, dict[str, str]], runtime: Runtime
) -> None:
    client, _ = people
    assert client_topic_rows(runtime) == []
    answer = client.get(page_of(runtime, "anna"))
    assert answer.status_code == 200
    text = html.unescape(answer.text)
    legends = re.findall(r"<legend>([^<]+)</legend>", text)
    topics_shown = [legend for legend in legends if legend == "Offers" or legend in NAMES]
    assert topics_shown == ["Offers", *NAMES]  # the group comes after the other topics
    assert text.index("<legend>Offers</legend>") < text.index(HEADING) < text.index(NAMES[0])
    for key in ClientTopic:
        assert f'name="topic:{key.value}"' in text
        assert offered(text, key.value) == (["mine", "teams"], "mine")
    assert client_topic_rows(runtime) == []  # shown from their definitions, not made


def test_ticking_one_with_my_teams_makes_its_row_and_a_teams_subscription(
    people: tuple[TestClient, dict[str, str]], runtime: Runtime
) -> None:
    client, auth = people
    path = page_of(runtime, "anna")
    fields = {f"topic:{REPLIES}": "on", f"channels:{REPLIES}": "email"}
    status, text = save(client, path, fields | {f"scope:{REPLIES}": "teams"})
    assert status == 200, text
    assert "My clients' replies: subscribed" in text
    assert "My clients' replies, whose clients: My teams' clients" in text
    assert client_topic_rows(runtime) == [REPLIES]  # the others are still not made
    saved = subscription(client, auth, "anna", REPLIES)
    assert (saved["status"], saved["channels"], saved["scope"]) == (
        "subscribed",
        ["email"],
        "teams",
    )
    assert offered(text, REPLIES) == (["mine", "teams"], "teams")
    changed = [e for e in timeline(client, auth, "anna") if e["type"].startswith("subscription.")]
    assert [e["actor_kind"] for e in changed] == ["self_service"]

    # Back to her own clients: the summary names the scope change, and only that.
    status, text = save(client, path, fields | {f"scope:{REPLIES}": "mine"})
    assert status == 200, text
    summary = re.search(r'<div class="notice" role="status">(.*?)</div>', text, re.S)
    assert summary
    assert re.findall(r"<li>([^<]+)</li>", summary.group(1)) == [
        "My clients' replies, whose clients: Clients I look after"
    ]
    assert subscription(client, auth, "anna", REPLIES)["scope"] == "mine"

    # The same summary in Russian, for an employee whose language it is.
    ok(client.patch("/v1/contacts/anna", json={"locale": "ru"}, headers=auth))
    status, text = save(client, path, fields | {f"scope:{REPLIES}": "teams"})
    assert status == 200, text
    assert "My clients' replies, чьи клиенты: Клиенты моих команд" in text


def test_all_clients_is_offered_only_to_an_employee_whose_staff_account_sees_all(
    people: tuple[TestClient, dict[str, str]], runtime: Runtime
) -> None:
    client, auth = people
    link_staff(runtime, "anna@corp.example", StaffRole.VIEWER, "anna")
    link_staff(runtime, "boris@corp.example", StaffRole.MARKETER, "boris")
    anna, boris = page_of(runtime, "anna"), page_of(runtime, "boris")
    assert offered(client.get(anna).text, REFUSALS) == (["mine", "teams"], "mine")
    assert offered(client.get(boris).text, REFUSALS) == (["mine", "teams", "all"], "mine")

    fields = {f"topic:{REFUSALS}": "on", f"channels:{REFUSALS}": "email"}
    status, text = save(client, boris, fields | {f"scope:{REFUSALS}": "all"})
    assert status == 200, text
    assert "My clients' refusals, whose clients: All clients" in text
    assert subscription(client, auth, "boris", REFUSALS)["scope"] == "all"

    # An admin's employee may too; a disabled account may not.
    with runtime.sessions() as session:
        user = session.scalars(select(StaffUser).where(StaffUser.email == "anna@corp.example"))
        user.one().role = StaffRole.ADMIN
        session.commit()
    assert offered(client.get(anna).text, REFUSALS)[0] == ["mine", "teams", "all"]
    with runtime.sessions() as session:
        staff.set_disabled(session, "boris@corp.example", True)
        session.commit()
    # Boris's saved `all` is no longer his to keep: the page offers his own clients instead.
    assert offered(client.get(boris).text, REFUSALS) == (["mine", "teams"], None)


def test_a_forged_all_is_an_error_naming_the_field_and_changes_nothing(
    people: tuple[TestClient, dict[str, str]], runtime: Runtime
) -> None:
    client, auth = people
    body = {"channels": ["email"], "scope": "mine"}
    ok(client.put(f"/v1/contacts/anna/subscriptions/{REFUSALS}", json=body, headers=auth))
    ok(
        client.put(
            "/v1/contacts/anna/subscriptions/offers", json={"channels": ["email"]}, headers=auth
        )
    )
    before = timeline(client, auth, "anna")
    path = page_of(runtime, "anna")
    # In one post: a new topic ticked, Offers left, and refusals forged to `all`.
    fields = {
        f"topic:{REPLIES}": "on",
        f"channels:{REPLIES}": "email",
        f"scope:{REPLIES}": "teams",
        f"topic:{REFUSALS}": "on",
        f"channels:{REFUSALS}": "email",
        "channels:offers": "email",
    }
    for forged, says in (
        ("all", "My clients' refusals, whose clients: “All clients” is only for staff"),
        ("world", "My clients' refusals, whose clients: choose one of the options listed."),
    ):
        status, text = save(client, path, fields | {f"scope:{REFUSALS}": forged})
        assert status == 422, text
        alert = re.search(r'<div class="alert" role="alert">(.*?)</div>', text, re.S)
        assert alert, text
        assert "Nothing was saved" in alert.group(1)
        assert says in alert.group(1)
        assert subscription(client, auth, "anna", REFUSALS)["scope"] == "mine"
        assert subscription(client, auth, "anna", "offers")["status"] == "subscribed"
        assert client_topic_rows(runtime) == [REFUSALS]  # the replies row was not made
        assert timeline(client, auth, "anna") == before
    with runtime.reads() as session:
        count = select(func.count()).select_from(Subscription)
        assert session.scalar(count) == 2
