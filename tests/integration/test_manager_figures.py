"""The manager's view (issue 21, item 4) on SQLite and PostgreSQL: two managers with clients
and teams, their clients' refusals, failures and replies inside and outside the period,
counted by `hub.services.manager_figures` (per client and per manager, in grouped SQL); "my
clients" and "my teams' clients"; the latest activity in the profile's own words; the CSV;
and linking a staff user to their employee record (refused naming the field for an unknown
id, a client, an erased employee), through the service and the admin's form."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from hub.channels.base import InboundText
from hub.db.base import utcnow
from hub.db.models import AuditEntry, Contact, StaffUser
from hub.domain import ActorKind, EventType, StaffRole
from hub.runtime import Runtime
from hub.services import inbound, staff, timeline, timeline_entries, timeline_words
from hub.services import manager_figures as figures
from hub.services.actor import Actor
from hub.services.errors import InvalidField
from hub.services.manager_figures import Counts, Period, Whose
from tests.dispatching import ok, person, topic

PASSWORD = "correct horse battery staple"
ADMIN = "ada@acme.example"
SYSTEM = Actor(kind=ActorKind.SYSTEM, name="test", source="test")
OLD = dt.timedelta(days=40)  # outside the last 30 days, inside the last 90


@dataclass(frozen=True)
class Happened:
    """One event on a client's timeline and what it counts as: refusal, failure, reply or
    nothing (None)."""

    client: str
    counts_as: str | None
    ago: dt.timedelta = dt.timedelta(0)


def world(client: TestClient, auth: dict[str, str]) -> None:
    """Ann owns c-1 and c-2 and is in the north team; Bob owns c-3 and is in the south team;
    Cat is in the north team and owns no one. c-3 is in the north team too; c-4 (south) has
    no owner."""
    for key, name in (("north", "North"), ("south", "South")):
        ok(client.put(f"/v1/teams/{key}", json={"name": name}, headers=auth))
    topic(client, auth, "offers", allowed_channels=["email", "sms"])
    person(client, auth, "e-ann", kind="employee", name="Ann Lee", teams=["north"])
    person(client, auth, "e-bob", kind="employee", name="Bob Ng", teams=["south"])
    person(client, auth, "e-cat", kind="employee", name="Cat Roy", teams=["north"])
    clients: tuple[tuple[str, str, str | None, list[str], str], ...] = (
        ("c-1", "Carla", "e-ann", ["north"], "+447946000001"),
        ("c-2", "Dev", "e-ann", [], "+447946000002"),
        ("c-3", "Eve", "e-bob", ["north"], "+447946000003"),
        ("c-4", "Fay", None, ["south"], "+447946000004"),
    )
    for external_id, name, owner, teams, phone in clients:
        person(
            client,
            auth,
            external_id,
            name=name,
            email=f"{external_id}@example.com",
            phone=phone,
            owner=owner,
            teams=teams,
            subscribe={"offers": ["email"]},
        )


def happen(client: TestClient, auth: dict[str, str], runtime: Runtime) -> list[Happened]:
    """What the clients did, through the doors it comes through (the API, an inbound text)
    where it happens now, and as timeline rows where it must be back-dated or needs a send;
    each with what it should count as."""
    happened: list[Happened] = []
    ok(client.delete("/v1/contacts/c-1/subscriptions/offers", headers=auth))
    happened.append(Happened("c-1", "refusal"))  # subscription.changed to unsubscribed
    prefs = {"unsubscribed_all": True}
    ok(client.patch("/v1/contacts/c-2/preferences", json=prefs, headers=auth))
    happened.append(Happened("c-2", "refusal"))  # preferences.changed, unsubscribed_all on
    with runtime.sessions() as session:
        for sender, body in (
            ("+447946000001", "STOP"),  # suppression.added (a refusal) and inbound.message
            ("+447946000003", "Thanks, call me tomorrow"),  # a reply
            ("+447946000003", "HELP"),  # answered, recorded nowhere
        ):
            text = InboundText(provider="twilio", sender=sender, body=body, provider_id=None)
            inbound.receive(session, text, hasher=runtime.hasher)
        session.commit()
    happened += [Happened("c-1", "refusal"), Happened("c-1", None), Happened("c-3", "reply")]
    rows: list[tuple[str, EventType, dict[str, Any]]] = [
        ("c-2", EventType.DELIVERY_BOUNCED, {"reason": "hard_bounce"}),
        ("c-3", EventType.DELIVERY_FAILED, {"reason": "rejected"}),
        ("c-4", EventType.DELIVERY_FAILED, {"reason": "rejected"}),  # no owner: nobody's
        ("c-2", EventType.SUPPRESSION_ADDED, {"reason": "hard_bounce"}),  # not their choice
        ("c-1", EventType.REFUSAL_REASON, {"reason": "too_many", "topic_key": "offers"}),
    ]
    kinds = {EventType.DELIVERY_BOUNCED: "failure", EventType.DELIVERY_FAILED: "failure"}
    old: list[tuple[str, EventType, dict[str, Any], str]] = [
        ("c-1", EventType.DELIVERY_FAILED, {"reason": "gave_up"}, "failure"),
        ("c-3", EventType.INBOUND_MESSAGE, {"changes": {"body": "hi"}}, "reply"),
        (
            "c-2",
            EventType.SUBSCRIPTION_CHANGED,
            {
                "topic_key": "offers",
                "changes": {"status": {"before": "x", "after": "unsubscribed"}},
            },
            "refusal",
        ),
    ]
    with runtime.sessions() as session:
        ids = ids_of(session)
        now = utcnow()
        for external_id, kind, fields in rows:
            timeline.record(session, contact_id=ids[external_id], type=kind, actor=SYSTEM, **fields)
            happened.append(Happened(external_id, kinds.get(kind)))
        for external_id, kind, fields, counts_as in old:
            timeline.record(
                session,
                contact_id=ids[external_id],
                type=kind,
                actor=SYSTEM,
                at=now - OLD,
                **fields,
            )
            happened.append(Happened(external_id, counts_as, OLD))
        # After the period's end: counted by no period that ends now.
        timeline.record(
            session,
            contact_id=ids["c-3"],
            type=EventType.DELIVERY_FAILED,
            actor=SYSTEM,
            at=now + dt.timedelta(hours=1),
        )
        session.commit()
    return happened


def ids_of(session: Session) -> dict[str, int]:
    return dict(session.execute(select(Contact.external_id, Contact.id)).all())


def expected(happened: list[Happened], days: int) -> dict[str, Counts]:
    """Each client's counts in the last `days`, from what happened."""
    tally: dict[str, Counter[str]] = {}
    for h in happened:
        if h.counts_as and h.ago < dt.timedelta(days=days):
            tally.setdefault(h.client, Counter())[h.counts_as] += 1
    return {client: Counts(c["refusal"], c["failure"], c["reply"]) for client, c in tally.items()}


OWNERS = {"c-1": "e-ann", "c-2": "e-ann", "c-3": "e-bob"}
NAMES = {"e-ann": "Ann Lee", "e-bob": "Bob Ng"}


@pytest.mark.parametrize("days", [30, 90])
def test_figures_per_client_and_per_manager_count_what_happened_in_the_period(
    client: TestClient, auth: dict[str, str], runtime: Runtime, days: int
) -> None:
    world(client, auth)
    happened = happen(client, auth, runtime)
    period = Period.last(days, now=utcnow())
    want = expected(happened, days)
    with runtime.reads() as session:
        ids = ids_of(session)
        by_id = figures.counts_for(session, list(ids.values()), period)
        rows = figures.by_manager(session, period)
    got = {external_id: by_id[i] for external_id, i in ids.items() if i in by_id}
    assert got == want
    assert want["c-1"].refusals == 2  # the STOP counts once, its reason not again
    # Per manager: the clients they own today and the sum of those clients' counts.
    managers = []
    for owner in sorted(NAMES, key=NAMES.__getitem__):
        theirs = [c for c, o in OWNERS.items() if o == owner]
        total = [want.get(c, Counts()) for c in theirs]
        managers.append(
            figures.ManagerRow(
                external_id=owner,
                name=NAMES[owner],
                clients=len(theirs),
                refusals=sum(t.refusals for t in total),
                failures=sum(t.failures for t in total),
                replies=sum(t.replies for t in total),
            )
        )
    assert rows == managers  # Cat owns no one: not a row; c-4 has no owner: counted nowhere
    sums = figures.totals(rows)
    assert (sums.managers, sums.clients) == (2, 3)
    assert sums.refusals == sum(m.refusals for m in managers)

    text = "".join(figures.csv_chunks(rows, period))
    table = list(csv.DictReader(io.StringIO(text)))
    assert [(r["external_id"], r["name"], int(r["clients"])) for r in table] == [
        *((m.external_id, m.name or "", m.clients) for m in managers),
        ("", "Total", sums.clients),
    ]
    assert int(table[-1]["failures"]) == sums.failures
    assert table[0]["since"] == period.since.isoformat()


def test_my_clients_and_my_teams_clients_newest_first_a_page_at_a_time(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    world(client, auth)
    happen(client, auth, runtime)
    with runtime.reads() as session:
        ids = ids_of(session)
        ann, bob, cat = ids["e-ann"], ids["e-bob"], ids["e-cat"]

        def listed(employee: int, whose: Whose, **paging: Any) -> list[str]:
            found = figures.clients_page(
                session, employee, whose, before_id=paging.get("before"), limit=10
            )
            return [c.external_id for c in found]

        assert listed(ann, Whose.MINE) == ["c-2", "c-1"]
        assert listed(ann, Whose.MINE, before=ids["c-2"]) == ["c-1"]
        # North's clients, whoever owns them; its employees (Ann, Cat) are not clients.
        assert listed(ann, Whose.TEAMS) == ["c-3", "c-1"]
        assert listed(cat, Whose.TEAMS) == ["c-3", "c-1"]
        assert listed(cat, Whose.MINE) == []
        assert listed(bob, Whose.TEAMS) == ["c-4"]
        teams = figures.team_names(session, [ids["c-1"], ids["c-2"], ids["c-3"]])
        assert teams == {ids["c-1"]: ["North"], ids["c-3"]: ["North"]}


def test_latest_activity_is_the_newest_event_in_the_profiles_own_words(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    world(client, auth)
    happen(client, auth, runtime)
    now = utcnow()
    with runtime.reads() as session:
        clients = list(session.scalars(select(Contact).where(Contact.kind == "client")))
        statements: list[str] = []

        def count(*_: Any) -> None:
            statements.append("one")

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", count)
        try:
            latest = figures.latest(session, clients, topics={"offers": "Offers"}, now=now)
        finally:
            event.remove(engine, "before_cursor_execute", count)
        assert len(statements) <= 2  # the events, what they name: not one per client
        for c in clients:
            profile = timeline_entries.page(
                session,
                c.id,
                before_id=None,
                limit=500,
                topics={"offers": "Offers"},
                zone=c.timezone,
                now=now,
            )
            # The newest by when it happened (a back-dated row was written last).
            newest = max(profile, key=lambda e: (e.occurred_at, e.id))
            words = timeline_words.plain(newest.words or newest.fallback)
            assert latest[c.id] == figures.Latest(newest.occurred_at, newest.kind, words)
    # c-3's newest is the failure an hour from now; c-1's is the reason it gave for leaving,
    # though its failure of 40 days ago was written after it.
    ids = {c.external_id: c.id for c in clients}
    assert latest[ids["c-3"]].kind == EventType.DELIVERY_FAILED
    assert latest[ids["c-1"]].words.startswith("Said why they unsubscribed from Offers")


# -- linking a staff user to their employee record -----------------------------------------


def refused(runtime: Runtime, external_id: str) -> InvalidField:
    with runtime.sessions() as session, pytest.raises(InvalidField) as caught:
        staff.link_employee(session, ADMIN, external_id, hasher=runtime.hasher)
    return caught.value


def test_a_staff_user_links_only_to_an_existing_employee(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    world(client, auth)
    person(client, auth, "e-gone", kind="employee", name="Gone")
    assert client.delete("/v1/contacts/e-gone", headers=auth).status_code == 200
    with runtime.sessions() as session:
        staff.create(session, ADMIN, PASSWORD, StaffRole.ADMIN)
        session.commit()

    unknown = refused(runtime, "e-nobody")
    assert unknown.field == "employee"
    assert "no contact with external id 'e-nobody'" in unknown.message
    a_client = refused(runtime, "c-1")
    assert (a_client.field, "'c-1' is a client, not an employee" in a_client.message) == (
        "employee",
        True,
    )
    erased = refused(runtime, "e-gone")
    assert (erased.field, "'e-gone' was erased" in erased.message) == ("employee", True)
    assert refused(runtime, "x" * 256).field == "employee"
    nul = refused(runtime, "e-a\x00nn")  # PostgreSQL's text cannot hold it: once a 500
    assert (nul.field, nul.message) == ("employee", "employee: must not contain control characters")

    with runtime.sessions() as session:
        assert staff.link_employee(session, ADMIN, " e-ann ", hasher=runtime.hasher)
        assert not staff.link_employee(session, ADMIN, "e-ann", hasher=runtime.hasher)
        session.commit()
    with runtime.sessions() as session:
        assert staff.link_employee(session, ADMIN, "", hasher=runtime.hasher)  # unlinks
        session.commit()
    with runtime.reads() as session:
        user = staff.get(session, ADMIN)
        assert user.contact_id is None
        changes = [
            (a.before, a.after)
            for a in session.scalars(
                select(AuditEntry).where(
                    AuditEntry.resource == "staff_user", AuditEntry.action == "updated"
                )
            )
        ]
    assert changes == [
        ({"employee": None}, {"employee": "e-ann"}),
        ({"employee": "e-ann"}, {"employee": None}),
    ]


def signed_in(client: TestClient) -> str:
    """Sign in as the admin; the CSRF token of their pages."""
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/login").text)
    assert token is not None
    fields = {"csrf": token.group(1), "email": ADMIN, "password": PASSWORD}
    assert client.post("/console/login", data=fields, follow_redirects=False).status_code == 303
    page = client.get("/console/clients").text
    csrf = re.search(r'name="csrf" value="([^"]+)"', page)
    assert csrf is not None
    return csrf.group(1)


def test_the_admins_form_names_the_field_and_my_clients_follows_the_link(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    world(client, auth)
    with runtime.sessions() as session:
        user_id = staff.create(session, ADMIN, PASSWORD, StaffRole.ADMIN).id
        session.commit()
    csrf = signed_in(client)
    before = client.get("/console/clients")
    assert "Your account has no employee record" in before.text
    assert f'href="/console/admin/users/{user_id}#employee"' in before.text

    path = f"/console/admin/users/{user_id}/employee"
    answer = client.post(path, data={"csrf": csrf, "employee": "c-2"})
    assert answer.status_code == 422
    assert '<a href="#employee">Employee record: &#39;c-2&#39; is a client' in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert 'value="c-2"' in answer.text  # what was typed stays in the field

    answer = client.post(path, data={"csrf": csrf, "employee": "e-ann"}, follow_redirects=False)
    assert answer.status_code == 303
    shown = client.get(answer.headers["location"]).text
    assert "Employee record saved" in shown
    assert "Ann Lee" in shown
    with runtime.reads() as session:
        linked = session.get(StaffUser, user_id)
        assert linked is not None
        assert linked.contact_id == ids_of(session)["e-ann"]

    mine = client.get("/console/clients").text
    assert re.findall(r'data-client="([^"]+)"', mine) == ["c-2", "c-1"]
    teams = client.get("/console/clients", params={"whose": "teams", "days": 7}).text
    assert re.findall(r'data-client="([^"]+)"', teams) == ["c-3", "c-1"]
    bad = client.get("/console/clients", params={"days": 31})
    assert bad.status_code == 422
    assert "days" in bad.text
    report = client.get("/console/clients/managers", params={"days": 90})
    assert re.findall(r'data-manager="([^"]+)"', report.text) == ["e-ann", "e-bob", "all"]
    download = client.get("/console/clients/managers.csv", params={"days": 7})
    assert download.headers["content-type"].startswith("text/csv")
    assert download.text.splitlines()[1].startswith("e-ann,Ann Lee,2,")
