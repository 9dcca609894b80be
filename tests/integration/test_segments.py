"""Saved segments on SQLite and PostgreSQL: every condition and group counted against a
hand-counted set of five people; the saved ones through PUT/GET/DELETE with the audit log;
the 422s naming the field; a campaign that names a saved segment sends with its own copy;
and campaigns stored with the older flat form still reach whom they did."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from hub.db.models import AuditEntry, Contact
from hub.dispatch import audience
from hub.domain import Scope
from hub.runtime import Runtime
from hub.services import topics
from tests.conftest import make_key
from tests.dispatching import ok, person, topic

UTC = dt.UTC

# Five people, and what each condition should find among them, counted by hand.
PEOPLE: dict[str, dict[str, Any]] = {
    "p0": {
        "kind": "client",
        "locale": "ru-RU",
        "timezone": "Europe/Moscow",
        "attributes": {
            "plan": "pro",
            "spent": 150,
            "city": "Saint Petersburg",
            "renewal": "2025-03-10",
            "vip": True,
        },
    },
    "p1": {
        "kind": "client",
        "locale": "ru",
        "timezone": "Europe/Moscow",
        "attributes": {
            "plan": "free",
            "spent": "42",
            "city": "Moscow",
            "renewal": "2025-06-01T10:00:00Z",
            "vip": "true",
        },
    },
    "p2": {
        "kind": "employee",
        "locale": "en-GB",
        "timezone": "Europe/London",
        "attributes": {"plan": "pro", "spent": "lots", "renewal": "soon", "vip": None},
    },
    "p3": {
        "kind": "client",
        "locale": "en",
        "timezone": "America/New_York",
        "attributes": {"spent": 1000.5, "renewal": "2024-12-31", "tags": ["a"], "n": "1.2.3"},
    },
    "p4": {"kind": "client", "timezone": "Asia/Tokyo", "attributes": {"spent": "-7"}},
}
CREATED = {
    "p0": dt.datetime(2025, 1, 1, 10, 0, tzinfo=UTC),
    "p1": dt.datetime(2025, 1, 31, 23, 59, tzinfo=UTC),
    "p2": dt.datetime(2025, 2, 1, 0, 0, tzinfo=UTC),
    "p3": dt.datetime(2024, 6, 1, 12, 0, tzinfo=UTC),
    "p4": dt.datetime(2025, 3, 15, 8, 0, tzinfo=UTC),
}
EVERYONE = set(PEOPLE)


def attr(name: str, **test: Any) -> dict[str, Any]:
    return {"attribute": {"name": name, **test}}


CASES: list[tuple[dict[str, Any], set[str]]] = [
    ({"kind": "client"}, {"p0", "p1", "p3", "p4"}),
    ({"kind": "employee"}, {"p2"}),
    ({"locale": ["ru"]}, {"p0", "p1"}),  # the language takes its regions
    ({"locale": ["ru-RU"]}, {"p0"}),
    ({"locale": ["en", "de"]}, {"p2", "p3"}),
    ({"not": {"locale": ["ru"]}}, {"p2", "p3", "p4"}),  # no locale is "not Russian"
    ({"timezone": ["Europe/Moscow", "Asia/Tokyo"]}, {"p0", "p1", "p4"}),
    ({"subscription": {"topic": "news"}}, {"p0", "p1"}),  # p4 unsubscribed
    ({"subscription": {"topic": "news", "channel": "sms"}}, {"p0"}),
    ({"subscription": {"topic": "offers", "channel": "sms"}}, {"p2"}),
    ({"subscription": {"topic": "offers", "channel": "email"}}, set()),
    (attr("plan", equals="pro"), {"p0", "p2"}),
    (attr("plan", not_equals="pro"), {"p1", "p3", "p4"}),  # no plan is "not pro"
    (attr("plan", **{"in": ["free", "team"]}), {"p1"}),
    (attr("spent", equals=42), {"p1"}),  # a number compares as a number: "42" is 42
    (attr("spent", equals=1000.5), {"p3"}),
    (attr("spent", equals="150"), {"p0"}),  # text compares as text: 150 reads "150"
    (attr("spent", **{"in": [150, "lots"]}), {"p0", "p2"}),
    (attr("vip", equals=True), {"p0", "p1"}),  # true, and the text "true"
    (attr("city", contains="PETER"), {"p0"}),
    (attr("city", contains="S"), {"p0", "p1"}),  # "Moscow" has an s
    (attr("vip", exists=True), {"p0", "p1"}),  # p2's is null
    (attr("vip", exists=False), {"p2", "p3", "p4"}),
    (attr("tags", equals="a"), set()),  # a list is no text
    (attr("tags", exists=True), {"p3"}),
    (attr("spent", min=100), {"p0", "p3"}),  # "lots" is no number, "42" is too small
    (attr("spent", min=40, max=200), {"p0", "p1"}),
    (attr("spent", max=0), {"p4"}),  # "-7"
    (attr("n", min=0), set()),  # "1.2.3" is no number
    (attr("renewal", since="2025-01-01"), {"p0", "p1"}),  # "soon" is no date
    (attr("renewal", until="2025-03-10"), {"p0", "p3"}),
    (attr("renewal", since="2025-03-11", until="2025-06-01"), {"p1"}),  # the whole last day
    ({"created": {"since": "2025-02-01"}}, {"p2", "p4"}),
    ({"created": {"until": "2025-01-31"}}, {"p0", "p1", "p3"}),  # to its last minute
    ({"created": {"since": "2025-01-01", "until": "2025-01-31"}}, {"p0", "p1"}),
    (
        {
            "all": [
                {"kind": "client"},
                {"any": [attr("plan", equals="pro"), attr("spent", min=500)]},
            ]
        },
        {"p0", "p3"},
    ),
    ({"any": [{"kind": "employee"}, {"timezone": ["Asia/Tokyo"]}]}, {"p2", "p4"}),
    ({"not": {"all": [{"kind": "client"}, {"locale": ["ru"]}]}}, {"p2", "p3", "p4"}),
    (
        {"all": [{"not": {"any": [attr("plan", equals="pro"), attr("vip", exists=True)]}}]},
        {"p3", "p4"},
    ),
    (  # five groups deep: the most there may be
        {"all": [{"any": [{"not": {"all": [{"any": [{"kind": "employee"}]}]}}]}]},
        {"p0", "p1", "p3", "p4"},
    ),
]


@pytest.fixture
def people(client: TestClient, auth: dict[str, str], runtime: Runtime) -> TestClient:
    topic(client, auth, "news", allowed_channels=["email", "sms"])
    topic(client, auth, "offers", allowed_channels=["email", "sms"])
    subscriptions = {
        "p0": {"news": ["email", "sms"]},
        "p1": {"news": ["email"]},
        "p2": {"offers": ["sms"]},
        "p4": {"news": ["email"]},
    }
    for external_id, fields in PEOPLE.items():
        person(
            client,
            auth,
            external_id,
            name=f"Person {external_id[1]}",
            email=f"{external_id}@example.com",
            phone=f"+4420794600{external_id[1]}0",
            subscribe=subscriptions.get(external_id),
            **fields,
        )
    ok(client.delete("/v1/contacts/p4/subscriptions/news", headers=auth), 200, 204)
    with runtime.sessions() as session:
        for external_id, created in CREATED.items():
            session.execute(
                update(Contact).where(Contact.external_id == external_id).values(created_at=created)
            )
        session.commit()
    return client


def counted(client: TestClient, auth: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = ok(client.post("/v1/segments/count", json=body, headers=auth))
    return result


def test_each_condition_and_group_matches_the_people_counted_by_hand(
    people: TestClient, auth: dict[str, str]
) -> None:
    wrong = []
    for tree, expected in CASES:
        found = counted(people, auth, {"conditions": tree})
        names = {s["external_id"] for s in found["sample"]}
        if found["count"] != len(expected) or names != expected:
            wrong.append((tree, sorted(expected), found["count"], sorted(names)))
    assert wrong == []
    # No tree: everyone, newest first in the sample, with names.
    everyone = counted(people, auth, {})
    assert everyone["count"] == 5
    assert everyone["sample"][0] == {"external_id": "p4", "name": "Person 4"}


def test_a_topic_narrows_the_count_to_its_audience(
    people: TestClient, auth: dict[str, str]
) -> None:
    found = counted(people, auth, {"topic": "news", "conditions": {"locale": ["ru-RU"]}})
    assert (found["count"], [s["external_id"] for s in found["sample"]]) == (1, ["p0"])
    assert counted(people, auth, {"topic": "news"})["count"] == 2
    # A tree that names the topic's own subscription again, inside a NOT: no correlation
    # mix-up between the audience's subscriptions and the condition's.
    tree = {"not": {"subscription": {"topic": "news", "channel": "sms"}}}
    found = counted(people, auth, {"topic": "news", "conditions": tree})
    assert [s["external_id"] for s in found["sample"]] == ["p1"]


def test_a_sample_holds_at_most_ten(client: TestClient, auth: dict[str, str]) -> None:
    for i in range(12):
        person(client, auth, f"many{i:02}", kind="employee")
    found = counted(client, auth, {"conditions": {"kind": "employee"}})
    assert found["count"] == 12
    assert [s["external_id"] for s in found["sample"]] == [f"many{i:02}" for i in range(11, 1, -1)]


def test_a_saved_segment_is_put_read_listed_sampled_and_deleted_with_an_audit_trail(
    people: TestClient, runtime: Runtime
) -> None:
    key = make_key(runtime, "marketing", Scope.CAMPAIGNS)
    body = {
        "name": "Russian speakers",
        "description": "Anyone whose language is Russian",
        "conditions": {"all": [{"locale": ["ru"]}]},
    }
    created = people.put("/v1/segments/ru-speakers", json=body, headers=key)
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == "marketing"
    assert created.json()["conditions"] == {"all": [{"locale": ["ru"]}]}
    sampled = ok(people.get("/v1/segments/ru-speakers/sample", headers=key))
    assert sampled["count"] == 2
    within = ok(people.get("/v1/segments/ru-speakers/sample?topic=offers", headers=key))
    assert within == {"count": 0, "sample": []}

    changed = body | {"conditions": {"any": [{"locale": ["ru"]}, {"kind": "employee"}]}}
    assert people.put("/v1/segments/ru-speakers", json=changed, headers=key).status_code == 200
    assert ok(people.put("/v1/segments/ru-speakers", json=changed, headers=key))  # unchanged
    assert ok(people.get("/v1/segments/ru-speakers/sample", headers=key))["count"] == 3
    listed = ok(people.get("/v1/segments", headers=key))
    assert [s["key"] for s in listed["items"]] == ["ru-speakers"]
    assert ok(people.get("/v1/segments/ru-speakers", headers=key))["conditions"] == {
        "any": [{"locale": ["ru"]}, {"kind": "employee"}]
    }

    assert people.delete("/v1/segments/ru-speakers", headers=key).status_code == 204
    assert people.get("/v1/segments/ru-speakers", headers=key).status_code == 404
    assert people.delete("/v1/segments/ru-speakers", headers=key).status_code == 404

    with runtime.sessions() as session:
        entries = list(
            session.scalars(
                select(AuditEntry).where(AuditEntry.resource == "segment").order_by(AuditEntry.id)
            )
        )
    assert [(e.action, e.actor, e.resource_key) for e in entries] == [
        ("created", "marketing", "ru-speakers"),
        ("updated", "marketing", "ru-speakers"),  # the unchanged PUT recorded nothing
        ("deleted", "marketing", "ru-speakers"),
    ]
    assert entries[1].before is not None
    assert entries[1].after is not None
    assert entries[1].before["conditions"] == {"all": [{"locale": ["ru"]}]}
    assert entries[1].after["conditions"]["any"][1] == {"kind": "employee"}
    assert entries[2].before is not None
    assert entries[2].before["name"] == "Russian speakers"


def test_segments_need_the_campaigns_scope(client: TestClient, runtime: Runtime) -> None:
    contacts_only = make_key(runtime, "crm", Scope.CONTACTS)
    assert client.get("/v1/segments", headers=contacts_only).status_code == 403
    body = {"conditions": {"kind": "client"}}
    assert client.post("/v1/segments/count", json=body, headers=contacts_only).status_code == 403


def deep(levels: int) -> dict[str, Any]:
    tree: dict[str, Any] = {"kind": "client"}
    for i in range(levels):
        tree = {"not": tree} if i % 2 else {"all": [tree]}
    return tree


BAD: list[tuple[dict[str, Any], str, str]] = [
    ({"conditions": deep(6)}, "conditions", "nest at most 5 deep"),
    ({"conditions": {"any": [{"kind": "client"}] * 51}}, "conditions", "more than 50"),
    ({"conditions": {"all": []}}, "conditions.all", "at least 1"),
    ({"conditions": {}}, "conditions", "exactly one of"),
    (
        {"conditions": {"all": [{"kind": "client", "locale": ["ru"]}]}},
        "conditions.all[0]",
        "exactly one of",
    ),
    ({"conditions": {"all": [{"colour": "red"}]}}, "conditions.all[0].colour", "not permitted"),
    ({"conditions": {"kind": "robot"}}, "conditions.kind", "client"),
    ({"conditions": {"locale": ["not a tag"]}}, "conditions.locale[0]", "locale tag"),
    ({"conditions": {"timezone": ["Mars/Olympus"]}}, "conditions.timezone[0]", "IANA"),
    (
        {"conditions": {"any": [{"kind": "client"}, attr("plan", equals="a", contains="b")]}},
        "conditions.any[1].attribute",
        "exactly one test",
    ),
    ({"conditions": attr("plan")}, "conditions.attribute", "exactly one test"),
    ({"conditions": attr("spent", min="lots")}, "conditions.attribute.min", "number"),
    ({"conditions": attr("spent", min=5, max=1)}, "conditions.attribute", "min comes after max"),
    ({"conditions": attr("day", since="2025-13-01")}, "conditions.attribute.since", "date"),
    ({"conditions": attr('say "hi"', exists=True)}, "conditions.attribute.name", '"'),
    ({"conditions": {"created": {}}}, "conditions.created", "give since or until"),
    (
        {"conditions": {"created": {"since": "2025-02-01", "until": "2025-01-01"}}},
        "conditions.created",
        "since comes after until",
    ),
    (
        {"conditions": {"not": {"subscription": {"topic": "nothing-here"}}}},
        "conditions.not.subscription.topic",
        "no topic",
    ),
    (
        {"conditions": {"subscription": {"topic": "news", "channel": "pigeon"}}},
        "conditions.subscription.channel",
        "email",
    ),
    ({"topic": "nothing-here"}, "topic", "no topic"),
]


@pytest.mark.parametrize(("body", "field", "words"), BAD)
def test_a_bad_tree_is_a_422_naming_the_field(
    client: TestClient, auth: dict[str, str], body: dict[str, Any], field: str, words: str
) -> None:
    topic(client, auth, "news")
    response = client.post("/v1/segments/count", json=body, headers=auth)
    assert response.status_code == 422, response.text
    details = response.json()["error"]["details"]
    assert any(d["field"] == field and words in d["message"] for d in details), details


def test_a_saved_segment_is_checked_as_the_count_is(
    client: TestClient, auth: dict[str, str]
) -> None:
    body = {"name": "Deep", "conditions": deep(6)}
    response = client.put("/v1/segments/deep", json=body, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "conditions"
    missing = {"name": "No name", "conditions": {"kind": "client"}, "colour": "red"}
    response = client.put("/v1/segments/x", json=missing, headers=auth)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "colour"
    body = {"name": "Bad topic", "conditions": {"subscription": {"topic": "gone"}}}
    response = client.put("/v1/segments/x", json=body, headers=auth)
    assert response.json()["error"]["details"][0]["field"] == "conditions.subscription.topic"
    assert client.put("/v1/segments/Bad Key", json=body, headers=auth).status_code == 422


def test_a_campaign_names_a_saved_segment_and_keeps_its_own_copy(
    people: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    template = {"variants": {"": {"email_subject": "Hi", "email_text": "Hello"}}}
    ok(people.put("/v1/templates/hello", json=template, headers=auth))
    pros = {
        "name": "Pros",
        "conditions": {"any": [attr("plan", equals="pro"), {"kind": "employee"}]},
    }
    ok(people.put("/v1/segments/pros", json=pros, headers=auth))
    body = {"name": "For pros", "topic": "news", "template": "hello", "segment_key": "pros"}
    campaign = ok(people.post("/v1/campaigns", json=body, headers=auth))
    assert campaign["segment_key"] == "pros"
    assert campaign["segment"] == pros["conditions"]
    dry = ok(people.post(f"/v1/campaigns/{campaign['id']}/dry-run", headers=auth))
    assert dry["audience"] == 1  # of news's subscribers p0 and p1, only p0 is pro
    assert dry["samples"]["send:email"] == ["p0"]

    # Changing the saved segment afterwards leaves the campaign as it was created.
    ok(
        people.put(
            "/v1/segments/pros", json=pros | {"conditions": {"kind": "employee"}}, headers=auth
        )
    )
    again = ok(people.get(f"/v1/campaigns/{campaign['id']}", headers=auth))
    assert again["segment"] == pros["conditions"]

    unknown = people.post("/v1/campaigns", json=body | {"segment_key": "nope"}, headers=auth)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["field"] == "segment_key"
    both = people.post("/v1/campaigns", json=body | {"segment": {"kind": "client"}}, headers=auth)
    assert both.status_code == 422
    assert both.json()["error"]["details"][0]["field"] == "segment_key"


def test_the_flat_form_of_older_campaigns_still_reaches_whom_it_did(
    people: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    flat = {"kind": "client", "locales": ["ru"], "attributes": {"plan": "pro"}}
    found = ok(
        people.post("/v1/campaigns/audience", json={"topic": "news", "segment": flat}, headers=auth)
    )
    assert found["count"] == 1  # p0
    with runtime.reads() as session:
        offers = topics.get(session, "offers")
        # Attributes compared as text in the flat form: 42 matched "42", true matched "true".
        assert audience.count(session, None, {"attributes": {"spent": 42}}) == 1
        assert audience.count(session, None, {"attributes": {"vip": True}}) == 2
        assert audience.count(session, None, {"timezones": ["Europe/London"]}) == 1
        assert audience.count(session, offers, {"kind": "employee"}) == 1
        assert audience.count(session, None, {}) == 5
