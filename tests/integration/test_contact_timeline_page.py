"""A person's timeline in plain words, on SQLite and PostgreSQL: every kind of event reads as
a sentence with its kind small beside it; the notification, campaign, topic and template it
names are links that answer; its data is a two-column table; the names are read in a fixed
number of queries however long the page; a kind this version does not know shows as it did
before, not as an error. A notification's deliveries name each person."""

# The sentences use typographic quotation marks and dashes.
# ruff: noqa: RUF001

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, insert

from hub.db.base import utcnow
from hub.db.models import ContactEvent
from hub.domain import EventType, Scope, StaffRole
from hub.runtime import Runtime
from hub.services import staff, timeline
from tests.conftest import make_key
from tests.timelines import DISPATCHER, EMAIL, PHONE, Varied, varied

PASSWORD = "correct horse battery staple"


@pytest.fixture
def ada(client: TestClient, runtime: Runtime) -> Varied:
    world = varied(client, make_key(runtime, "seed", Scope.ADMIN), runtime)
    with runtime.sessions() as session:
        staff.create(session, "vic@acme.example", PASSWORD, StaffRole.VIEWER)
        session.commit()
    form = client.get("/console/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    signed = client.post(
        "/console/login",
        data={"csrf": token.group(1), "email": "vic@acme.example", "password": PASSWORD},
        follow_redirects=False,
    )
    assert signed.status_code == 303
    return world


@dataclass
class Row:
    kind: str  # the row's data-kind
    code: str | None  # the kind as shown beside the sentence
    what: str
    links: list[str]
    details: dict[str, str]
    detail_links: list[str]
    who: str


def words(element: ET.Element) -> str:
    return " ".join("".join(element.itertext()).split())


def rows(page: str) -> list[Row]:
    """The timeline's rows, read from the page's HTML (the table is well-formed XML but for
    the line-break opportunities in the details' names)."""
    start = page.index('<table class="timeline">')
    end = page.index("</tbody></table></div>", start) + len("</tbody></table>")
    table = ET.fromstring(page[start:end].replace("<wbr>", ""))
    found = []
    for tr in table.findall("./tbody/tr"):
        cells = tr.findall("td")
        assert len(cells) == 4, words(tr)
        _when, what, details, who = cells
        code = what.find("code")
        if code is not None:
            what.remove(code)  # the sentence apart from the kind beside it
        found.append(
            Row(
                kind=tr.get("data-kind", ""),
                code=None if code is None else code.text,
                what=words(what),
                links=[a.get("href", "") for a in what.iter("a")],
                details={
                    words(r.find("th")): words(r.find("td"))  # type: ignore[arg-type]
                    for r in details.findall("./table/tbody/tr")
                },
                detail_links=[a.get("href", "") for a in details.iter("a")],
                who=words(who),
            )
        )
    return found


def test_every_kind_reads_as_a_sentence_with_its_kind_beside_it(
    client: TestClient, ada: Varied
) -> None:
    page = client.get("/console/contacts/ada")
    assert page.status_code == 200
    found = rows(page.text)
    assert {r.kind for r in found} == set(EventType)  # the world has every kind there is
    for row in found:
        assert row.code == row.kind, row
        assert row.kind not in row.what, row
        assert row.what, row
    said = [r.what for r in found]
    n, receipt = ada.notification_id, ada.receipt_id
    for sentence in (
        f"E-mail sent to {EMAIL} for campaign ‘Spring offer’ (notification #{n})",
        f"E-mail to {EMAIL} bounced for good (hard bounce) for campaign ‘Spring offer’ "
        f"(notification #{n}): 550 5.1.1 <{EMAIL}>: user unknown",
        f"Call to {PHONE} refused for campaign ‘Spring offer’ (notification #{n}): "
        "the person turned this channel off",
        f"SMS to {PHONE} may or may not have gone for campaign ‘Spring offer’ "
        f"(notification #{n}): the worker stopped while sending, on a channel not safe to "
        "resend",
        f"E-mail to {EMAIL} failed for Order updates (notification #{receipt}): the provider "
        "refused this message (554 5.7.1 message refused), on attempt 2",
        f"SMS to {PHONE} delivered for Order updates (notification #{receipt}); Twilio reported it",
        "SMS refused from now on: the person replied STOP",
        "Replied by SMS: ‘STOP’ (they asked for no more SMS)",
        f"E-mail opened for campaign ‘Spring offer’ (notification #{n}) (mobile)",
        f"E-mail link followed for campaign ‘Spring offer’ (notification #{n}): "
        "https://shop.example.com/spring (by a machine: several links of the message at once: "
        "a mail filter's scanner; not counted as the person's)",
        "SMS allowed again: the person replied START",
        "Unsubscribed from Offers on the preferences page: ‘too many e-mails’",
        "Subscribed to Offers by e-mail and SMS through the API",
        "Preferences changed through the API: turned off calls; quiet hours 22:00–07:30",
        "Details changed through the API: attribute ‘plan’",
        "Added as a client through the API",
    ):
        assert sentence in said, f"{sentence!r} not in {said}"
    # The walk's check: a delivery names its notification by number.
    delivered = next(r for r in found if r.kind.startswith("delivery."))
    assert re.search(r"#\d+", delivered.what)
    staffed = next(r for r in found if r.kind == "subscription.changed" and "API" in r.what)
    assert staffed.who == "api_key: seed via api"


def test_ids_are_links_that_answer(client: TestClient, ada: Varied) -> None:
    found = rows(client.get("/console/contacts/ada").text)
    sent = next(r for r in found if r.kind == "delivery.sent" and "campaign" in r.what)
    assert sent.links == [
        f"/console/campaigns/{ada.campaign_id}",
        f"/console/notifications/{ada.notification_id}",
    ]
    subscribed = next(r for r in found if r.what.startswith("Subscribed to Offers"))
    assert subscribed.links == ["/console/topics/offers/edit"]
    assert f"/console/notifications/{ada.notification_id}" in sent.detail_links
    assert "/console/templates/history?key=offer" in sent.detail_links
    everywhere = {link for r in found for link in r.links + r.detail_links}
    for link in sorted(everywhere):
        assert client.get(link).status_code == 200, link


def test_details_are_a_two_column_table_not_a_dict(client: TestClient, ada: Varied) -> None:
    page = client.get("/console/contacts/ada").text
    found = rows(page)
    bounced = next(r for r in found if r.kind == "delivery.bounced")
    assert bounced.details == {
        "delivery_id": str(ada.deliveries[f"{ada.notification_id}.email"]),
        "notification_id": f"#{ada.notification_id}",
        "status": "5.1.1",
        "detail": f"550 5.1.1 <{EMAIL}>: user unknown",
        "reason": "hard_bounce",
        "template": "offer, version 2",
    }
    assert '<th scope="row">attributes.<wbr>plan</th>' in page  # breaks after the dot
    created = next(r for r in found if r.kind == "contact.created")
    assert created.details["email"] == f"— → {EMAIL}"
    assert created.details["kind"] == "— → client"
    timeline_html = page[page.index('<table class="timeline">') :]
    assert "{&#39;" not in timeline_html
    assert "{&#34;" not in timeline_html


@contextmanager
def statements(runtime: Runtime) -> Iterator[list[str]]:
    """The SQL statements run while inside."""
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(runtime.engine, "before_cursor_execute", count)


def test_names_are_read_in_one_query_a_page_not_one_an_event(
    client: TestClient, runtime: Runtime, ada: Varied
) -> None:
    with statements(runtime) as before:
        assert client.get("/console/contacts/ada").status_code == 200
    more = []
    for delivery_key, delivery_id in ada.deliveries.items():
        notification_id = int(delivery_key.split(".")[0])
        more += [
            timeline.event_row(
                contact_id=ada.contact_id,
                type=EventType.DELIVERY_SENT,
                actor=DISPATCHER,
                changes={"delivery_id": delivery_id, "notification_id": notification_id},
            )
        ] * 12
    with runtime.sessions() as session:
        timeline.record_many(session, more)
        session.commit()
    with statements(runtime) as after:
        assert client.get("/console/contacts/ada").status_code == 200
    assert len(rows(client.get("/console/contacts/ada").text)) > 60
    assert len(after) == len(before), "\n".join(after)
    naming = [s for s in after if "campaigns" in s and "deliveries" in s]
    assert len(naming) == 1, naming


def test_a_kind_this_version_does_not_know_shows_as_before(
    client: TestClient, runtime: Runtime, ada: Varied
) -> None:
    """A newer version's kind (or channel) in the table: the page still opens and shows it."""
    with runtime.engine.begin() as db:
        db.execute(
            insert(ContactEvent),
            [{"contact_id": ada.contact_id, "occurred_at": utcnow(), "type": "delivery.forwarded",
              "actor_kind": "robot", "actor": "pixel", "source": "tracking", "topic_key": "offers",
              "channel": "email", "reason": "machine", "ip": None, "user_agent": None,
              "changes": {"delivery_id": 1, "user_agent": "GoogleImageProxy"}}],
        )  # fmt: skip
    page = client.get("/console/contacts/ada")
    assert page.status_code == 200
    newest = rows(page.text)[0]
    assert (newest.kind, newest.code) == ("delivery.forwarded", None)
    assert newest.what == "delivery.forwarded · email · offers: machine"
    assert newest.details == {
        "delivery_id": "1",
        "user_agent": "GoogleImageProxy",
        "reason": "machine",
    }
    assert newest.who == "robot: pixel via tracking"


def test_a_notifications_deliveries_name_each_person(client: TestClient, ada: Varied) -> None:
    page = client.get(f"/console/notifications/{ada.notification_id}").text
    cells = re.findall(r'<td class="person" data-label="Person">(.*?)</td>', page)
    assert len(cells) == 3
    for cell in cells:
        assert (
            cell == '<span class="name">Ada Lovelace</span> <a href="/console/contacts/ada">ada</a>'
        )
