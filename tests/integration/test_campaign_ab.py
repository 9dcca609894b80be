"""A/B campaigns through the real dispatch path to the SMTP peer, on SQLite and PostgreSQL:
shares honoured on a few hundred people, each in one arm only and the same arm however
often it is asked; the variants' checks (422s naming the field); and a test-then-winner
campaign whose scheduler, with its clock moved past the wait, picks the variant people
clicked more and sends it to everyone who was not in the test.

The winner test's clicks are real: the test follows the tracked links of the mail the SMTP
peer received, as a browser (a person) or with HEAD (a link checker, a machine's).
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.campaigns.scheduler import tick
from hub.db.base import utcnow
from hub.db.models import AuditEntry, Delivery, Engagement, Notification, Topic
from hub.dispatch import audience
from hub.dispatch.segment import bucket_of
from hub.domain import Scope
from hub.runtime import Runtime
from hub.settings import Settings
from tests import seeding
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import daytime_zone, hub_running, ok, topic, wait_for
from tests.peers.smtp import SmtpPeer

Wired = tuple[TestClient, dict[str, str], Runtime, SmtpPeer]


PUBLIC = "https://hub.example.com"
SALE = "https://shop.example.com/sale"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)


def template(arm: str) -> dict[str, Any]:
    subject = f"{arm}: hi {{{{ contact.name }}}}"
    return {"variants": {"": {"email_subject": subject, "email_text": f"Sale: {SALE} \n"}}}


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
            public_url=PUBLIC,
            tracking_settle_seconds=0.2,
            tracking_too_soon_seconds=0,  # the test clicks at once; a person would not
        )
        with hub_running(settings) as (client, runtime):
            auth = make_key(runtime, "marketing", Scope.CAMPAIGNS, Scope.CONTACTS, Scope.NOTIFY)
            admin = make_key(runtime, "admin", Scope.ADMIN)
            topic(client, admin, "offers", allowed_channels=["email"])
            for arm in ("a", "b", "c"):
                ok(
                    client.put(
                        f"/v1/templates/offer-{arm}", json=template(arm.upper()), headers=admin
                    )
                )
            yield client, auth, runtime, smtp


# Ids given, so high: PostgreSQL's sequence does not see them, and the API's own contacts
# (a test send's stand-in) take ids from 1.
FIRST = 10_001


def people(runtime: Runtime, count: int) -> list[int]:
    """`count` people subscribed to offers by e-mail, in a daytime zone; their ids."""
    now = utcnow()
    zone = daytime_zone()
    with runtime.engine.begin() as db:
        topic_id = db.execute(select(Topic.id).where(Topic.key == "offers")).scalar_one()
        rows = [
            {"id": i, "external_id": f"p{i}", "name": f"Person {i}", "email": f"p{i}@example.com",
             "timezone": zone, "channels": ["email"]}
            for i in range(FIRST, FIRST + count)
        ]  # fmt: skip
        seeding.subscribers(db, topic_id, rows, now=now)
    return [row["id"] for row in rows]


def create(client: TestClient, auth: dict[str, str], **fields: Any) -> Any:
    body = {"name": "Spring sale", "topic": "offers"} | fields
    return ok(client.post("/v1/campaigns", json=body, headers=auth), 201)


def campaign_now(client: TestClient, auth: dict[str, str], campaign_id: int) -> Any:
    return ok(client.get(f"/v1/campaigns/{campaign_id}", headers=auth))


def until(client: TestClient, auth: dict[str, str], campaign_id: int, state: str) -> Any:
    def probe() -> Any:
        body = campaign_now(client, auth, campaign_id)
        return body if body["state"] == state else None

    return wait_for(f"campaign {campaign_id} to be {state}", probe, timeout=60)


def deliveries(runtime: Runtime, campaign_id: int) -> list[Any]:
    """(contact, arm, notification, state) of every delivery of the campaign."""
    with runtime.reads() as session:
        return list(
            session.execute(
                select(
                    Delivery.contact_id,
                    Notification.arm,
                    Notification.id.label("notification_id"),
                    Delivery.state,
                    Delivery.id,
                )
                .join(Notification, Notification.id == Delivery.notification_id)
                .where(Notification.campaign_id == campaign_id)
            )
        )


def expected_arm(campaign_id: int, contact_id: int, edges: list[tuple[str, int]]) -> str:
    """The arm `edges` (name, last bucket + 1) give a person: computed apart from the SQL."""
    bucket = bucket_of(seed=campaign_id, contact_id=contact_id)
    return next(name for name, high in edges if bucket < high)


def test_shares_are_honoured_and_each_person_gets_one_variant_always(wired: Wired) -> None:
    client, auth, runtime, smtp = wired
    everyone = people(runtime, 400)
    variants = [
        {"name": "A", "template": "offer-a", "share": 50},
        {"name": "B", "template": "offer-b", "share": 30},
        {"name": "C", "template": "offer-c", "share": 20},
    ]
    # A throttle far above the sending rate: each arm is paced on its own at its share of it.
    draft = create(client, auth, variants=variants, tracking=False, throttle={"email": 100_000})
    assert draft["template"] == "offer-a"  # the first variant's: the dry run's and the test's
    assert draft["tracking"] is False
    assert draft["ab"] == {"mode": "split", "metric": "click"}
    assert [v["share"] for v in draft["variants"]] == [50, 30, 20]
    ok(client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth))
    done = until(client, auth, draft["id"], "done")
    assert done["counts"]["state"] == {"sent": 400}

    rows = deliveries(runtime, draft["id"])
    per_person = Counter(row.contact_id for row in rows)
    assert sorted(per_person) == everyone
    assert set(per_person.values()) == {1}  # nobody gets two variants
    shares = Counter(row.arm for row in rows)
    for name, share in (("A", 50), ("B", 30), ("C", 20)):
        assert abs(shares[name] - 4 * share) <= 24, shares  # within 6 points of 400
    edges = [("A", 5000), ("B", 8000), ("C", 10000)]
    assert all(row.arm == expected_arm(draft["id"], row.contact_id, edges) for row in rows)

    # Asked again (a resumed fan-out, a later count), each arm's audience is the same people.
    with runtime.reads() as session:
        offers = session.scalar(select(Topic).where(Topic.key == "offers"))
        assert offers is not None
        for arm in session.scalars(
            select(Notification).where(Notification.campaign_id == draft["id"])
        ):
            again = audience.next_ids(
                session, offers, named=None, after=0, limit=1000, segment=arm.segment
            )
            assert again == sorted(row.contact_id for row in rows if row.arm == arm.arm)
            assert audience.count(session, offers, arm.segment) == shares[arm.arm]
            assert arm.tracking is False
            assert arm.throttle == {"email": {"A": 50_000, "B": 30_000, "C": 20_000}[arm.arm]}

    # The mail each person got is their arm's template.
    mails = smtp.wait_for(400)
    text = mails[0].message.get_body(("plain",)).get_content()
    assert f"Sale: {SALE}" in text  # tracking off for this campaign: the link is the shop's
    assert "/t/c/" not in text
    received = {m.rcpt_tos[0]: m.message["Subject"] for m in mails}
    arm_of = {row.contact_id: row.arm for row in rows}
    assert all(received[f"p{i}@example.com"].startswith(f"{arm_of[i]}: ") for i in everyone)
    assert set(done["ab_results"]) >= {"arms", "note", "p_value"}
    assert [(a["name"], a["delivered"]) for a in done["ab_results"]["arms"]] == [
        (name, shares[name]) for name in "ABC"
    ]
    assert done["ab_results"]["note"].startswith("Too few to tell")  # nobody clicked


REFUSED: list[tuple[dict[str, Any], str]] = [
    ({"variants": [{"name": "A", "template": "offer-a"}]}, "variants"),
    (
        {
            "variants": [
                {"name": "A", "template": "offer-a", "share": 60},
                {"name": "B", "template": "offer-b", "share": 30},
            ]
        },
        "variants[1].share",
    ),
    (
        {
            "variants": [
                {"name": "A", "template": "offer-a", "share": 60},
                {"name": "B", "template": "offer-b"},
            ]
        },
        "variants[1].share",
    ),
    (
        {"variants": [{"name": "A", "template": "offer-a"}, {"name": "a", "template": "offer-b"}]},
        "variants[1].name",
    ),
    (
        {
            "variants": [
                {"name": "A B", "template": "offer-a"},
                {"name": "B", "template": "offer-b"},
            ]
        },
        "variants[0].name",
    ),
    (
        {"variants": [{"name": "A", "template": "nope"}, {"name": "B", "template": "offer-b"}]},
        "variants[0].template",
    ),
    (
        {
            "template": "offer-a",
            "variants": [
                {"name": "A", "template": "offer-a"},
                {"name": "B", "template": "offer-b"},
            ],
        },
        "template",
    ),
    ({"template": "offer-a", "ab": {"mode": "split"}}, "ab"),
    (  # a winner needs opens and clicks: every rate would be 0
        {
            "variants": [
                {"name": "A", "template": "offer-a"},
                {"name": "B", "template": "offer-b"},
            ],
            "ab": {"mode": "winner", "sample": 20, "wait_minutes": 60},
            "tracking": False,
        },
        "tracking",
    ),
    ({}, "template"),
    (
        {
            "variants": [
                {"name": "A", "template": "offer-a"},
                {"name": "B", "template": "offer-b"},
            ],
            "ab": {"mode": "winner", "wait_minutes": 60},
        },
        "ab.sample",
    ),
    (
        {
            "variants": [
                {"name": "A", "template": "offer-a"},
                {"name": "B", "template": "offer-b"},
            ],
            "ab": {"mode": "winner", "sample": 20},
        },
        "ab.wait_minutes",
    ),
    (
        {
            "variants": [
                {"name": "A", "template": "offer-a", "share": 50},
                {"name": "B", "template": "offer-b", "share": 50},
            ],
            "ab": {"mode": "winner", "sample": 20, "wait_minutes": 60},
        },
        "variants[0].share",
    ),
    (
        {
            "variants": [
                {"name": "A", "template": "offer-a"},
                {"name": "B", "template": "offer-b"},
            ],
            "ab": {"mode": "winner", "sample": 20, "wait_minutes": 60},
            "schedule": {"kind": "recurring", "cron": "0 10 * * MON"},
        },
        "ab.mode",
    ),
    (
        {
            "variants": [
                {"name": "A", "template": "offer-a"},
                {"name": "B", "template": "offer-b"},
            ],
            "ab": {"mode": "split", "sample": 20},
        },
        "ab.sample",
    ),
    (
        {
            "variants": [
                {"name": "A", "template": "offer-a"},
                {"name": "B", "template": "offer-b"},
            ],
            "ab": {"mode": "winner", "sample": 95, "wait_minutes": 60},
        },
        "ab.sample",
    ),
]


def test_variants_that_cannot_be_sent_are_refused_naming_the_field(wired: Wired) -> None:
    client, auth, _, _ = wired
    for fields, field in REFUSED:
        body = {"name": "Spring sale", "topic": "offers"} | fields
        refused = client.post("/v1/campaigns", json=body, headers=auth)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["details"][0]["field"] == field, fields
    listed = ok(client.get("/v1/campaigns", headers=auth))
    assert listed["items"] == []  # none of them was created


def follow(
    client: TestClient, mails: dict[str, Any], rows: list[Any], *, head: bool = False
) -> None:
    """Each person's tracked link in the mail they got, followed by a browser (a person) or
    asked with HEAD (a link checker: a machine)."""
    for row in rows:
        text = mails[f"p{row.contact_id}@example.com"].get_body(("plain",)).get_content()
        (url,) = re.findall(rf"{re.escape(PUBLIC)}/t/c/\S+", text)
        path = url.removeprefix(PUBLIC)
        if head:
            asked = client.head(path, headers={"User-Agent": CHROME}, follow_redirects=False)
            assert asked.status_code == 302
            continue
        answer = client.get(path, headers={"User-Agent": CHROME}, follow_redirects=False)
        assert answer.status_code == 302
        assert answer.headers["location"] == SALE


def clicks_on_record(runtime: Runtime, *, people: int, machines: int) -> None:
    def probe() -> bool:
        with runtime.reads() as session:
            found = dict(
                session.execute(
                    select(Engagement.machine, func.count()).group_by(Engagement.machine)
                ).all()
            )
        return found == {False: people, True: machines}

    wait_for(f"{people} clicks by people and {machines} by machines on record", probe)


def ticks(runtime: Runtime, now: dt.datetime) -> list[int]:
    with runtime.sessions() as session, session.begin():
        return tick(session, now=now)


def test_the_variant_people_clicked_more_goes_to_everyone_else(wired: Wired) -> None:
    client, auth, runtime, smtp = wired
    everyone = people(runtime, 300)
    variants = [{"name": "A", "template": "offer-a"}, {"name": "B", "template": "offer-b"}]
    ab = {"mode": "winner", "sample": 40, "wait_minutes": 60, "metric": "click"}
    draft = create(client, auth, variants=variants, ab=ab)
    ok(client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth))

    def test_sent() -> Any:
        rows = [r for r in deliveries(runtime, draft["id"]) if r.state.value == "sent"]
        body = campaign_now(client, auth, draft["id"])
        return rows if body["counts"]["state"] == {"sent": len(rows)} and rows else None

    tested = wait_for("the test group's mail", test_sent, timeout=60)
    sample = {row.contact_id for row in tested}
    edges = [("A", 2000), ("B", 4000)]
    assert all(row.arm == expected_arm(draft["id"], row.contact_id, edges) for row in tested)
    assert abs(len(sample) - 120) <= 25  # 40 % of 300
    assert campaign_now(client, auth, draft["id"])["state"] == "sending"  # the rest waits

    by_arm = {arm: [r for r in tested if r.arm == arm] for arm in "AB"}
    mails = {m.rcpt_tos[0]: m.message for m in smtp.wait_for(len(tested))}
    follow(client, mails, by_arm["A"][6:], head=True)  # a link checker: not people
    follow(client, mails, by_arm["A"][:6])
    follow(client, mails, by_arm["B"][:24])
    clicks_on_record(runtime, people=30, machines=len(by_arm["A"]) - 6)
    started = min(  # the test's send time, by the hub's own clock
        ok(client.get(f"/v1/notifications/{row.notification_id}", headers=auth))["created_at"]
        for row in {row.notification_id: row for row in tested}.values()
    )
    at = dt.datetime.fromisoformat(started)
    assert ticks(runtime, at + dt.timedelta(minutes=59)) == []  # not yet

    # Two schedulers at once, the clock past the wait: the pick is made once.
    later = at + dt.timedelta(minutes=61)
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        made = list(pool.map(lambda _: ticks(runtime, later), range(2)))
    (rest,) = [i for ids in made for i in ids]
    assert ticks(runtime, later + dt.timedelta(minutes=5)) == []
    runtime.enqueuer.try_fan_out(rest)

    decided = campaign_now(client, auth, draft["id"])["ab"]
    assert decided["winner"] == "B"
    assert decided["rest_notification"] == rest
    assert decided["rates"]["B"] > decided["rates"]["A"]
    assert decided["rates"]["A"] == pytest.approx(6 / len(by_arm["A"]))  # the scanner not counted
    assert "highest human click rate" in decided["why"]
    done = until(client, auth, draft["id"], "done")

    rows = deliveries(runtime, draft["id"])
    rested = [row for row in rows if row.id not in {t.id for t in tested}]
    assert {row.notification_id for row in rested} == {rest}
    assert {row.arm for row in rested} == {"B"}
    assert not sample & {row.contact_id for row in rested}  # nobody of the test again
    assert sample | {row.contact_id for row in rested} == set(everyone)
    received = {m.rcpt_tos[0]: m.message["Subject"] for m in smtp.wait_for(300)}
    assert all(received[f"p{row.contact_id}@example.com"].startswith("B: ") for row in rested)

    results = done["ab_results"]
    assert results["test_group_only"] is True
    assert [(a["name"], a["clicks"]) for a in results["arms"]] == [("A", 6), ("B", 24)]
    assert results["leader"] == "B"
    assert results["note"].startswith("B's click rate is higher")
    with runtime.reads() as session:
        audited = list(
            session.scalars(select(AuditEntry).where(AuditEntry.resource_key == str(draft["id"])))
        )
    assert any((entry.after or {}).get("ab", {}).get("winner") == "B" for entry in audited)


def test_a_variant_that_does_not_render_stops_the_schedule_and_a_test_sends_a_variant(
    wired: Wired,
) -> None:
    client, auth, runtime, smtp = wired
    people(runtime, 60)
    broken = {"variants": {"": {"email_subject": "C", "email_text": "{{ data.offer }}"}}}
    admin = make_key(runtime, "admin-2", Scope.ADMIN)
    ok(client.put("/v1/templates/offer-c", json=broken, headers=admin))
    variants = [{"name": "A", "template": "offer-a"}, {"name": "C", "template": "offer-c"}]
    draft = create(client, auth, variants=variants)

    dry = ok(client.post(f"/v1/campaigns/{draft['id']}/dry-run", headers=auth))
    assert sum(dry["arms"].values()) == dry["audience"] == 60
    assert {r["arm"] for r in dry["renders"]} == {"A"}  # C renders for nobody
    (error,) = dry["render_errors"]
    assert error["field"] == "variants[1].template..email_text"
    assert error["arm"] == "C"
    assert error["people"] == dry["arms"]["C"]  # tried on C's own people
    refused = client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["details"][0]["field"] == "variants[1].template..email_text"

    body = {"email": "mia@example.com", "arm": "A", "wait": 10}
    tested = ok(client.post(f"/v1/campaigns/{draft['id']}/test", json=body, headers=auth), 202)
    assert tested["outcome"] == "sent"
    (mail,) = smtp.wait_for(1)
    assert mail.message["Subject"].startswith("A: hi Person ")
    first_of_a = int(tested["rendered_for"].removeprefix("p"))
    edges = [("A", 5000), ("C", 10000)]
    assert expected_arm(draft["id"], first_of_a, edges) == "A"  # rendered as one of A's people
    unknown = client.post(
        f"/v1/campaigns/{draft['id']}/test", json=body | {"arm": "Z"}, headers=auth
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["field"] == "arm"


def test_a_campaigns_tracking_option_is_kept_audited_and_on_its_notification(
    wired: Wired,
) -> None:
    client, auth, runtime, _ = wired
    people(runtime, 3)
    draft = create(client, auth, template="offer-a", tracking=True)
    assert draft["tracking"] is True
    assert draft["variants"] is None
    assert draft["ab_results"] is None
    ok(client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth))
    until(client, auth, draft["id"], "done")
    with runtime.reads() as session:
        (sent,) = session.scalars(
            select(Notification).where(Notification.campaign_id == draft["id"])
        )
        (created,) = session.scalars(
            select(AuditEntry).where(
                AuditEntry.resource_key == str(draft["id"]), AuditEntry.action == "created"
            )
        )
    assert sent.tracking is True
    assert sent.arm is None
    assert (created.after or {})["tracking"] is True
    as_topic = create(client, auth, template="offer-a")
    assert as_topic["tracking"] is None  # as the topic says
