"""Engagement figures, on SQLite and PostgreSQL: e-mails sent through the real flow (the
workers, the capture sink) and a known campaign, then opens and clicks written as the
recorder keeps them; people are counted apart from machines, each link on its own, over time
by the hour, and an unsubscribe is credited to the message that caused it (within 30 days,
before the next message of the topic). The API's `engagement` and the console's pages show
the same numbers."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.db.models import Contact, Delivery
from hub.domain import Scope
from hub.runtime import Runtime
from tests import engaging, reporting
from tests.conftest import make_key
from tests.dispatching import ok, person, settled, topic
from tests.integration.test_reports import sign_in, text_of

M = dt.timedelta(minutes=1)
# A Monday morning: the campaign starts at 07:20 UTC, its first e-mail leaves at 07:30.
NOW = dt.datetime(2026, 3, 2, 10, 20, tzinfo=dt.UTC)
CONTENT = {"": {"email_subject": "Hello", "email_text": "See https://shop.example/a"}}


def deliveries_of(runtime: Runtime, notification_id: int) -> dict[str, int]:
    """The notification's e-mail deliveries that went: external id to delivery id."""
    with runtime.engine.connect() as db:
        rows = db.execute(
            select(Contact.external_id, Delivery.id)
            .join(Contact, Contact.id == Delivery.contact_id)
            .where(Delivery.notification_id == notification_id, Delivery.channel == "email")
        )
        return {str(external_id): int(delivery_id) for external_id, delivery_id in rows}


def send(client: TestClient, auth: dict[str, str], people: list[str]) -> int:
    body = {"topic": "offers", "content": CONTENT, "recipients": people}
    sent = ok(client.post("/v1/notifications", json=body, headers=auth), 202)
    settled(client, auth, sent["id"])
    return int(sent["id"])


def engagement(client: TestClient, auth: dict[str, str], notification_id: int) -> Any:
    return ok(client.get(f"/v1/notifications/{notification_id}", headers=auth))["engagement"]


def test_people_are_counted_apart_from_machines_and_unsubscribes_go_to_the_right_message(
    admin_hub: tuple[TestClient, dict[str, str], Runtime],
) -> None:
    client, auth, runtime = admin_hub
    topic(client, auth, "offers", category="marketing")
    people = ["ann", "bob", "cat", "dan", "eve", "fay"]
    for name in people:
        person(client, auth, name, email=f"{name}@example.com", subscribe={"offers": ["email"]})
    first = send(client, auth, people)
    ids = deliveries_of(runtime, first)
    assert sorted(ids) == sorted(people)
    with runtime.engine.begin() as db:
        engaging.hits(
            db,
            [
                engaging.Hit(ids["ann"]),  # a person opens, and follows link 1
                engaging.Hit(ids["ann"], link=1, after=40 * M),
                engaging.Hit(ids["bob"], after=2 * M, machine="privacy_proxy"),  # only a proxy
                engaging.Hit(ids["cat"], after=50 * M),  # opens; her filter scans the links
                engaging.Hit(ids["cat"], link=1, after=M, machine="all_links"),
                engaging.Hit(ids["cat"], link=2, after=M, machine="all_links"),
                engaging.Hit(ids["eve"], after=3 * M, machine="privacy_proxy"),  # a proxy, then
                engaging.Hit(ids["eve"], after=70 * M),  # she opens it herself
                engaging.Hit(ids["eve"], link=2, after=71 * M),
                engaging.Hit(ids["eve"], link=2, after=72 * M, machine="head_request"),
            ],
        )
    # ann leaves the topic after the first message; fay gets a second one first, then leaves;
    # dan unsubscribes from everything.
    ok(client.delete("/v1/contacts/ann/subscriptions/offers", headers=auth))
    second = send(client, auth, ["fay"])
    ok(client.delete("/v1/contacts/fay/subscriptions/offers", headers=auth))
    ok(client.patch("/v1/contacts/dan/preferences", json={"unsubscribed_all": True}, headers=auth))

    figures = engagement(client, auth, first)
    assert figures["tracked"] is True  # a marketing topic tracks by default
    assert (figures["delivered"], figures["delivered_people"], figures["bounced"]) == (6, 6, 0)
    assert (figures["opened"], figures["opened_all"]) == (3, 4)  # ann, cat, eve; + bob's proxy
    assert (figures["clicked"], figures["clicked_all"]) == (2, 3)  # ann, eve; + cat's scanner
    assert figures["open_rate"] == pytest.approx(3 / 6)
    assert figures["click_rate"] == pytest.approx(2 / 6)
    assert figures["click_to_open"] == pytest.approx(2 / 3)
    assert figures["machine_opens"] == {"privacy_proxy": 2}
    assert figures["machine_clicks"] == {"all_links": 2, "head_request": 1}
    links = [(k["index"], k["url"], k["people"], k["all_people"]) for k in figures["links"]]
    assert links == [
        (1, "https://shop.example/1", 1, 2),  # ann; and cat, through her scanner
        (2, "https://shop.example/2", 1, 2),  # eve (her own HEAD check adds no one); cat
    ]
    assert figures["unsubscribed"] == 2  # ann and dan; fay left after the second message
    assert engagement(client, auth, second)["unsubscribed"] == 1  # fay
    over = figures["over_time"]
    assert over["step_hours"] == 1
    assert sum(over["opens"]) == 3
    assert sum(over["clicks"]) == 2
    assert len(over["ends"]) == len(over["opens"]) == len(over["clicks"])


def test_an_unsubscribe_more_than_30_days_later_is_not_the_message_s(
    runtime: Runtime, client: TestClient
) -> None:
    with runtime.engine.begin() as db:
        mixed = reporting.mixed(db, now=NOW)
        # p2 leaves 31 days after their e-mail (sent at 07:40): too late to be its doing.
        reporting.unsubscribed(db, 2, "offers", at=mixed.start + 20 * M + dt.timedelta(days=31))
    auth = make_key(runtime, "marketing", Scope.CAMPAIGNS)
    figures = ok(client.get(f"/v1/campaigns/{mixed.campaign_id}", headers=auth))["engagement"]
    assert figures["unsubscribed"] == 1  # p1 only (p4 left before theirs went)


@pytest.fixture
def engaged(runtime: Runtime) -> reporting.Mixed:
    """The known campaign on a fixed morning, opened and clicked (tests/engaging.py `known`):
    p1 opens at 07:50 and follows link 2 at 07:55; p2 opens at 08:40; p3 opens at 08:35 and
    follows link 1 at 10:30; p5's privacy proxy opens; p6's mail filter follows both links."""
    with runtime.engine.begin() as db:
        return engaging.known(db, now=NOW)


def test_a_campaign_s_figures_in_the_api_per_link_and_by_the_hour(
    runtime: Runtime, client: TestClient, engaged: reporting.Mixed
) -> None:
    auth = make_key(runtime, "marketing", Scope.CAMPAIGNS)
    figures = ok(client.get(f"/v1/campaigns/{engaged.campaign_id}", headers=auth))["engagement"]
    assert (figures["delivered"], figures["bounced"]) == (6, 1)  # p1-p6 went; p7 bounced
    assert (figures["opened"], figures["opened_all"]) == (3, 4)
    assert (figures["clicked"], figures["clicked_all"]) == (2, 3)
    assert figures["machine_opens"] == {"privacy_proxy": 1}
    assert figures["machine_clicks"] == {"all_links": 2}
    assert [(k["index"], k["people"], k["all_people"]) for k in figures["links"]] == [
        (1, 1, 2),
        (2, 1, 2),
    ]
    assert figures["unsubscribed"] == 1  # p1, 20 minutes after their e-mail
    assert (figures["sms_delivered"], figures["sms_clicked"]) == (2, 0)
    over = figures["over_time"]
    assert over["start"].startswith("2026-03-02T07:00")  # the hour the first e-mail left in
    assert over["opens"] == [1, 2, 0, 0]  # 07:50 | 08:35, 08:40 | - | -
    assert over["clicks"] == [1, 0, 0, 1]  # 07:55 | - | - | 10:30
    # The list leaves the figures out: they are counted for one campaign at a time.
    listed = ok(client.get("/v1/campaigns", headers=auth))["items"]
    assert [c["engagement"] for c in listed] == [None]


def test_the_console_shows_people_first_machines_beside_them_and_the_same_chart(
    runtime: Runtime, client: TestClient, engaged: reporting.Mixed
) -> None:
    sign_in(client, runtime)
    for url in (
        f"/console/campaigns/{engaged.campaign_id}/report",
        f"/console/notifications/{engaged.notification_id}",
    ):
        answer = client.get(url)
        assert answer.status_code == 200, answer.text
        page = answer.text
        shown = {
            key: text_of(value)
            for key, value in re.findall(r'<dd[^>]*id="eng-([\w-]+)"[^>]*>(.*?)</dd>', page, re.S)
        }
        assert shown == {
            "delivered": "6",
            "opened": "3 50.0%",
            "opened-all": "all, including machines: 4",
            "clicked": "2 33.3%",
            "clicked-all": "all, including machines: 3",
            "click-to-open": "66.7% of the people who opened clicked",
            "bounced": "1",
            "unsubscribed": "1",
        }, url
        assert 'id="opened-means"' in page
        assert "within 30 days" in text_of(page)
        links = re.findall(r'<tr data-link="email-(\d)">(.*?)</tr>', page, re.S)
        assert [(n, text_of(row)) for n, row in links] == [
            ("1", "Link 1 https://shop.example/1 1 2"),
            ("2", "Link 2 https://shop.example/2 1 2"),
        ]
        drawn = dict(re.findall(r'data-series="(opens|clicks)" data-values="([\d ]+)"', page))
        assert drawn == {"opens": "0 1 2 0 0", "clicks": "0 1 0 0 1"}
        machines = re.findall(r'<li data-machine="([\w-]+)">([^<]*)</li>', page)
        assert [(key, words.split(":")[0]) for key, words in machines] == [
            ("open-privacy_proxy", "1 open"),
            ("click-all_links", "2 clicks"),
        ]


def test_a_call_that_makes_a_person_leave_counts_though_nothing_can_be_opened(
    runtime: Runtime, client: TestClient
) -> None:
    with runtime.engine.begin() as db:
        topic_id = reporting.topic(db, "alerts", now=NOW)
        reporting.contacts(db, 1, 2, now=NOW)
        reporting.subscribed(db, topic_id, [1, 2], now=NOW)
        campaign_id, notification_id = reporting.campaign(
            db, topic_id=topic_id, name="Calls", now=NOW
        )
        rows = [
            {"contact_id": c, "channel": "voice", "state": "delivered",
             "sent_at": NOW, "updated_at": NOW + M}
            for c in (1, 2)
        ]  # fmt: skip
        reporting.deliveries(db, notification_id, rows)
        reporting.unsubscribed(db, 2, "alerts", at=NOW + 10 * M)
    auth = make_key(runtime, "marketing", Scope.CAMPAIGNS)
    figures = ok(client.get(f"/v1/campaigns/{campaign_id}", headers=auth))["engagement"]
    assert (figures["delivered"], figures["opened_all"], figures["over_time"]) == (0, 0, None)
    assert figures["unsubscribed"] == 1
    sign_in(client, runtime)
    page = client.get(f"/console/campaigns/{campaign_id}/report").text
    assert re.search(r'<dd id="total-unsubscribed">1</dd>', page)
    assert re.search(r'<tr data-channel="voice">.*?<td>1</td></tr>', page, re.S)


def test_a_long_tail_of_opens_is_drawn_in_wider_steps(runtime: Runtime, client: TestClient) -> None:
    with runtime.engine.begin() as db:
        mixed = reporting.mixed(db, now=NOW)
        ids = engaging.sent_email(db, mixed.notification_id)
        # p1 opens at once; p2 four days later (p2's e-mail left at 07:40).
        engaging.hits(db, [engaging.Hit(ids[1], after=M), engaging.Hit(ids[2], after=96 * 60 * M)])
    auth = make_key(runtime, "marketing", Scope.CAMPAIGNS)
    over = ok(client.get(f"/v1/campaigns/{mixed.campaign_id}", headers=auth))["engagement"][
        "over_time"
    ]
    assert over["step_hours"] == 3  # 97 hours in 48 steps at most
    assert len(over["opens"]) == 33  # 07:00 + 33 x 3 h reaches 07:40 four days on
    assert (over["opens"][0], over["opens"][-1], sum(over["opens"])) == (1, 1, 2)
    sign_in(client, runtime)
    page = client.get(f"/console/campaigns/{mixed.campaign_id}/report").text
    assert "per 3 hours" in page
