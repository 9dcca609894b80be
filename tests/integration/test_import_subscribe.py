"""The import's subscribe option: `POST /v1/contacts/import?subscribe_topic=...` and
`hub contacts import --subscribe-topic`, 1,000 rows each, on SQLite and PostgreSQL.

Each subscription goes through the subscription service, so its rules hold; a person who cannot
be subscribed is imported but counted as failed, with the reason, and every subscription is a
consent event on the person's timeline with the source and note given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from hub.cli import app as cli
from hub.db.models import Contact, ContactEvent, Subscription, Topic
from hub.domain import ActorKind, EventType, SubscriptionStatus
from hub.runtime import Runtime
from hub.services import contacts, subscriptions, topics
from hub.services.actor import SELF_SERVICE_SOURCE, Actor
from hub.settings import Settings
from tests.conftest import TEST_SECRET
from tests.dispatching import ok, person, timeline, topic

URL = "/v1/contacts/import"
SOURCE = "spring-webinar"
NOTE = "Ticked 'send me news' on the sign-up form"
PEOPLE = 1000


def people_csv(count: int = PEOPLE) -> str:
    """`count` clients with an e-mail address; every third also has a phone."""
    rows = ["external_id,name,email,phone,attr.plan"]
    for i in range(count):
        phone = f"+1415555{i:04d}" if i % 3 == 0 else ""
        rows.append(f"p-{i},Person {i},p{i}@example.com,{phone},{'pro' if i % 2 else 'free'}")
    return "\n".join(rows) + "\n"


def post_import(
    client: TestClient, auth: dict[str, str], body: str, **params: Any
) -> tuple[int, Any]:
    response = client.post(
        URL, params=params, content=body.encode(), headers={**auth, "content-type": "text/csv"}
    )
    return response.status_code, response.json()


def count(runtime: Runtime, *where: Any, of: Any = Subscription) -> int:
    with runtime.reads() as session:
        return int(session.scalar(select(func.count()).select_from(of).where(*where)) or 0)


def self_service_unsubscribe(runtime: Runtime, external_id: str, topic_key: str) -> None:
    """The person's own unsubscribe from their preferences page (what starts the cool-down)."""
    actor = Actor(ActorKind.SELF_SERVICE, "self-service", SELF_SERVICE_SOURCE)
    with runtime.sessions() as session:
        contact = contacts.get(session, external_id, lock=True)
        subscriptions.unsubscribe(session, contact, topics.get(session, topic_key), actor)
        session.commit()


def test_the_api_subscribes_a_thousand_imported_people_with_their_consent(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    topic(client, auth, "news", audience="clients", allowed_channels=["email", "sms"])
    # Three people the import cannot subscribe, each for its own rule:
    ok(
        client.post(
            "/v1/suppressions", json={"channel": "email", "address": "p5@example.com"}, headers=auth
        ),
        200,
        201,
    )
    person(client, auth, "p-8", kind="employee", email="p8@example.com")  # not the audience
    person(client, auth, "p-11", email="p11@example.com", subscribe={"news": ["email"]})
    self_service_unsubscribe(runtime, "p-11", "news")  # their own "no" stands for 30 days

    status, report = post_import(
        client,
        auth,
        people_csv(),
        subscribe_topic="news",
        subscribe_channels=["sms", "email"],
        consent_source=SOURCE,
        consent_note=NOTE,
    )

    assert status == 200, report
    assert report["rows"] == PEOPLE
    assert report["created"] == PEOPLE - 2  # p-8 and p-11 existed
    assert report["subscribed"] == PEOPLE - 3
    assert report["failed"] == 3
    refused = {e["line"]: (e["field"], e["reason"]) for e in report["errors"]}
    assert set(refused) == {7, 10, 13}  # p-5, p-8, p-11 (line 1 is the header)
    assert all(field == "subscription" for field, _ in refused.values())
    assert "email to p5@example.com is suppressed" in refused[7][1]
    assert "is for clients, the contact is a employee" in refused[10][1]
    assert "unsubscribed themselves" in refused[13][1]
    assert contacts_named(client, auth, "p-5")["email"] == "p5@example.com"  # still imported

    news = ok(client.get("/v1/contacts/p-3/subscriptions/news", headers=auth))
    assert news["channels"] == ["sms", "email"]  # the order asked for
    assert news["consent_source"] == SOURCE
    assert news["consent_actor"] == "test-service"
    mail_only = ok(client.get("/v1/contacts/p-4/subscriptions/news", headers=auth))
    assert mail_only["channels"] == ["email"]  # no phone: the channels they can be reached on
    (consent,) = [e for e in timeline(client, auth, "p-3") if e["type"] == "subscription.changed"]
    assert (consent["source"], consent["reason"], consent["topic"]) == (SOURCE, NOTE, "news")
    assert (consent["actor_kind"], consent["actor"]) == ("api_key", "test-service")
    assert consent["changes"]["status"] == {"before": None, "after": "subscribed"}

    with runtime.reads() as session:
        news_id = session.scalar(select(Topic.id).where(Topic.key == "news"))
    subscribed = count(
        runtime,
        Subscription.topic_id == news_id,
        Subscription.status == SubscriptionStatus.SUBSCRIBED,
    )
    assert subscribed == PEOPLE - 3
    events = count(
        runtime,
        ContactEvent.type == EventType.SUBSCRIPTION_CHANGED,
        ContactEvent.source == SOURCE,
        of=ContactEvent,
    )
    assert events == PEOPLE - 3

    # Importing the same file again changes nothing and writes no new consent events.
    status, again = post_import(
        client, auth, people_csv(), subscribe_topic="news", consent_source=SOURCE
    )
    assert status == 200, again
    assert (again["unchanged"], again["subscribed"], again["failed"]) == (PEOPLE, PEOPLE - 3, 3)
    # Without channels, the topic's default (e-mail) is asked for: the third of the people on
    # SMS and e-mail change to e-mail alone, one consent event each; the rest stay as they are.
    with_phone = len(range(0, PEOPLE, 3))
    assert count(runtime, ContactEvent.source == SOURCE, of=ContactEvent) == events + with_phone


def contacts_named(client: TestClient, auth: dict[str, str], external_id: str) -> Any:
    return ok(client.get(f"/v1/contacts/{external_id}", headers=auth))


def test_the_option_is_checked_before_any_row_is_read(
    client: TestClient, auth: dict[str, str], runtime: Runtime
) -> None:
    topic(client, auth, "news", allowed_channels=["email"])
    body = people_csv(5)
    cases = [
        ({"subscribe_topic": "nope", "consent_source": SOURCE}, "subscribe_topic"),
        (
            {"subscribe_topic": "news", "subscribe_channels": ["sms"], "consent_source": SOURCE},
            "subscribe_channels[0]",
        ),
        ({"subscribe_topic": "news"}, "consent_source"),
        ({"subscribe_topic": "news", "consent_source": "self-service.form"}, "consent_source"),
        ({"subscribe_topic": "news", "consent_source": "a\nb"}, "consent_source"),
        ({"consent_source": SOURCE}, "consent_source"),
        ({"subscribe_channels": ["email"]}, "subscribe_channels"),
        ({"subscribe_topic": "news", "consent_source": "x" * 65}, "consent_source"),
        ({"subscribe_topic": "Not A Key!", "consent_source": SOURCE}, "subscribe_topic"),
        ({"subscribe_topic": "news", "subscribe_channels": ["fax"]}, "subscribe_channels[0]"),
    ]
    for params, field in cases:
        status, answer = post_import(client, auth, body, **params)
        assert status == 422, (params, answer)
        assert field in [d["field"] for d in answer["error"]["details"]], (params, answer)
    assert count(runtime, of=Contact) == 0


def test_the_cli_subscribes_a_thousand_imported_people(
    client: TestClient, auth: dict[str, str], runtime: Runtime, settings: Settings, tmp_path: Path
) -> None:
    topic(client, auth, "news", allowed_channels=["email", "sms"], default_channels=["email"])
    ok(
        client.post(
            "/v1/suppressions", json={"channel": "email", "address": "p2@example.com"}, headers=auth
        ),
        200,
        201,
    )
    data = tmp_path / "people.csv"
    data.write_text(people_csv())
    env = {"HUB_DATABASE_URL": settings.database_url, "HUB_SECRET_KEY": TEST_SECRET}
    runner = CliRunner()

    refused = runner.invoke(
        cli,
        [
            "contacts",
            "import",
            str(data),
            "--subscribe-topic",
            "news",
            "--channel",
            "voice",
            "--consent-source",
            SOURCE,
        ],
        env=env,
    )
    assert refused.exit_code == 1
    assert "--channel: topic 'news' does not allow voice" in refused.output
    assert count(runtime, of=Contact) == 0

    done = runner.invoke(
        cli,
        [
            "contacts",
            "import",
            str(data),
            "--subscribe-topic",
            "news",
            "--channel",
            "email",
            "--consent-source",
            "trade-show",
            "--consent-note",
            "Left a card at stand 12",
        ],
        env=env,
    )
    # One person's address is suppressed: imported, not subscribed, so the command says failed.
    assert done.exit_code == 2, done.output
    assert f"{PEOPLE:,} rows: {PEOPLE:,} created" in done.output
    assert f"1 failed, {PEOPLE - 1:,} subscribed to news" in done.output
    assert (
        "line 4: subscription: not subscribed to news: email to p2@example.com is suppressed"
        in (done.output)
    )
    assert count(runtime, Subscription.consent_source == "trade-show") == PEOPLE - 1
    (consent,) = [e for e in timeline(client, auth, "p-9") if e["type"] == "subscription.changed"]
    assert (consent["actor_kind"], consent["source"]) == ("cli", "trade-show")
    assert consent["reason"] == "Left a card at stand 12"
