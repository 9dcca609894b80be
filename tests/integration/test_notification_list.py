"""GET /v1/notifications on SQLite and PostgreSQL: each filter (topic, state, created range,
source as an API key or a campaign) keeps exactly the notifications it names, pages go newest
first without a gap or a repeat, each item counts its deliveries by state, and a malformed
filter is a 422 naming it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hub.db.base import utcnow
from hub.db.models import Topic
from hub.domain import Scope
from hub.runtime import Runtime
from hub.services import notifications
from hub.settings import Settings
from tests.conftest import make_key
from tests.dispatching import hub_running, ok, person, settled, topic

CONTENT = {"": {"email_subject": "Hello", "email_text": "Hello."}}


Listed = tuple[TestClient, dict[str, str], Runtime, dict[str, int]]


@pytest.fixture
def listed(settings: Settings) -> Iterator[Listed]:
    """Seven notifications, oldest first: billing's two invoices (one sent, one scheduled, one
    cancelled), shop's two news, and a campaign's one (written with the source a campaign's
    notification has, `campaign:<id>`, as hub/campaigns/ab_arms.py writes it)."""
    with hub_running(settings) as (client, runtime):
        admin = make_key(runtime, "set-up", Scope.ADMIN)
        billing = make_key(runtime, "billing", Scope.NOTIFY)
        shop = make_key(runtime, "shop", Scope.NOTIFY)
        topic(client, admin, "invoices")
        topic(client, admin, "news")
        person(
            client,
            admin,
            "ada",
            email="ada@example.com",
            subscribe={"invoices": ["email"], "news": ["email"]},
        )
        later = (utcnow() + dt.timedelta(days=2)).isoformat()

        def post(auth: dict[str, str], topic_key: str, **extra: Any) -> int:
            body = {"topic": topic_key, "content": CONTENT, "recipients": ["ada"], **extra}
            answer = ok(client.post("/v1/notifications", json=body, headers=auth), 202)
            return int(answer["id"])

        ids = {"sent": post(billing, "invoices")}
        settled(client, billing, ids["sent"])
        ids["scheduled"] = post(billing, "invoices", send_at=later)
        ids["cancelled"] = post(billing, "invoices", send_at=later)
        ok(client.post(f"/v1/notifications/{ids['cancelled']}/cancel", headers=billing))
        ids["news-1"] = post(shop, "news", send_at=later)
        ids["news-2"] = post(shop, "news", send_at=later)
        with runtime.sessions() as session:
            news = session.query(Topic.id).filter(Topic.key == "news").scalar()
            ids["campaign"] = notifications.create(
                session,
                topic_id=news,
                template_key=None,
                template_version=None,
                variants=CONTENT,
                data={},
                source="campaign:7",
                now=utcnow(),
                render_as=None,
                send_at=utcnow() + dt.timedelta(days=2),
            )
            session.commit()
        yield client, make_key(runtime, "reader", Scope.NOTIFY), runtime, ids


def listing(client: TestClient, auth: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    """Every page of the list with these filters, in order."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        params = query | ({"cursor": cursor} if cursor else {})
        page = ok(client.get("/v1/notifications", params=params, headers=auth))
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


def ids_of(items: list[dict[str, Any]]) -> list[int]:
    return [item["id"] for item in items]


def test_everything_newest_first_a_page_at_a_time(listed: Listed) -> None:
    client, auth, _, ids = listed
    every = sorted(ids.values(), reverse=True)
    first = ok(client.get("/v1/notifications", params={"limit": 3}, headers=auth))
    assert ids_of(first["items"]) == every[:3]
    assert first["next_cursor"]
    paged = listing(client, auth, limit=2)
    assert ids_of(paged) == every  # four pages, no gap, no repeat
    assert ids_of(listing(client, auth)) == every  # one page


def test_each_item_says_what_it_is_and_counts_its_deliveries(listed: Listed) -> None:
    client, auth, _, ids = listed
    items = {item["id"]: item for item in listing(client, auth)}
    sent = items[ids["sent"]]
    assert (sent["topic"], sent["source"], sent["state"]) == (
        "invoices",
        "api:billing",
        "fanned_out",
    )
    assert sent["counts"] == {"sent": 1}
    assert sent["fanned_out_at"]
    assert (sent["send_at"], sent["template"]) == (None, None)
    scheduled = items[ids["scheduled"]]
    assert (scheduled["state"], scheduled["counts"], scheduled["fanned_out_at"]) == (
        "scheduled",
        {},
        None,
    )
    assert scheduled["send_at"]
    assert scheduled["cancelled_at"] is None
    cancelled = items[ids["cancelled"]]
    assert cancelled["state"] == "cancelled"
    assert cancelled["cancelled_at"]
    assert items[ids["campaign"]]["source"] == "campaign:7"


FILTERS: list[tuple[dict[str, Any], list[str]]] = [
    ({"topic": "invoices"}, ["cancelled", "scheduled", "sent"]),
    ({"topic": "news"}, ["campaign", "news-2", "news-1"]),
    ({"topic": "no-such-topic"}, []),
    ({"state": "scheduled"}, ["campaign", "news-2", "news-1", "scheduled"]),
    ({"state": "cancelled"}, ["cancelled"]),
    ({"state": "fanned_out"}, ["sent"]),
    ({"source": "api:billing"}, ["cancelled", "scheduled", "sent"]),
    ({"source": "api:shop"}, ["news-2", "news-1"]),
    ({"source": "campaign:7"}, ["campaign"]),
    ({"source": "campaign:8"}, []),
    ({"source": "api:shop", "topic": "invoices"}, []),
    ({"state": "scheduled", "topic": "invoices", "limit": 1}, ["scheduled"]),
]


def test_each_filter_keeps_what_it_names(listed: Listed) -> None:
    """(One hub for every case: starting one per case would take most of the time.)"""
    client, auth, _, ids = listed
    wrong = [
        f"{query}: {found} instead of {expected}"
        for query, expected in FILTERS
        if (found := ids_of(listing(client, auth, **query))) != [ids[n] for n in expected]
    ]
    assert not wrong


def test_the_created_range_is_exclusive_at_both_ends(listed: Listed) -> None:
    client, auth, _, ids = listed
    every = listing(client, auth)  # newest first
    created = {item["id"]: item["created_at"] for item in every}
    after = created[ids["scheduled"]]
    before = created[ids["news-2"]]
    assert ids_of(listing(client, auth, created_after=after)) == [
        ids["campaign"],
        ids["news-2"],
        ids["news-1"],
        ids["cancelled"],
    ]
    assert ids_of(listing(client, auth, created_before=before)) == [
        ids["news-1"],
        ids["cancelled"],
        ids["scheduled"],
        ids["sent"],
    ]
    both = listing(client, auth, created_after=after, created_before=before)
    assert ids_of(both) == [ids["news-1"], ids["cancelled"]]
    # the same instant in another zone is the same instant
    berlin = dt.datetime.fromisoformat(after).astimezone(dt.timezone(dt.timedelta(hours=1)))
    assert ids_of(listing(client, auth, created_after=berlin.isoformat())) == ids_of(
        listing(client, auth, created_after=after)
    )


MALFORMED: list[tuple[dict[str, Any], str]] = [
    ({"state": "sending"}, "state"),
    ({"topic": "Not A Key"}, "topic"),
    ({"source": "billing"}, "source"),
    ({"source": "campaign:x"}, "source"),
    ({"source": "api:"}, "source"),
    ({"created_after": "2026-12-01T10:00:00"}, "created_after"),  # no zone: which 10:00?
    ({"created_before": "yesterday"}, "created_before"),
    ({"created_after": "0001-01-01T00:00:00+14:00"}, "created_after"),
    (
        {"created_after": "2026-12-02T00:00:00Z", "created_before": "2026-12-01T00:00:00Z"},
        "created_before",
    ),
    ({"cursor": "not-a-cursor"}, "cursor"),
    ({"limit": 0}, "limit"),
]


def test_a_malformed_filter_is_422_naming_it(listed: Listed) -> None:
    client, auth, _, _ = listed
    wrong = []
    for query, field in MALFORMED:
        answer = client.get("/v1/notifications", params=query, headers=auth)
        error = answer.json().get("error") or {}
        named = [d.get("field") for d in error.get("details") or []]
        if answer.status_code != 422 or named != [field]:
            wrong.append(f"{query}: {answer.status_code} {answer.text}")
    assert not wrong


def test_the_list_needs_the_notify_scope(listed: Listed) -> None:
    client, _, runtime, _ = listed
    contacts_only = make_key(runtime, "crm", Scope.CONTACTS)
    assert client.get("/v1/notifications", headers=contacts_only).status_code == 403
    assert client.get("/v1/notifications").status_code == 401
