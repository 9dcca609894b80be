"""Issue 21, item 2: what happens to a client reaches the employees who look after them, on
their own channels and cadence. A real STOP from the Twilio peer (signed, as Twilio calls
back) becomes an SMS to the client's owner within seconds, naming the client and linking to
their profile; an employee of another team hears nothing; a teams-scoped colleague does. A
daily-digest subscriber gets one e-mail of the day's refusals with the reasons people gave on
the preferences page. An employee who is erased, or leaves the team, hears no more.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.app import create_app
from hub.db.models import AuditEntry, ClientEventMessage, Contact, Notification, StaffUser
from hub.domain import Scope, StaffRole
from hub.preferences.tokens import Purpose
from hub.runtime import Runtime
from hub.services import client_events, erased_clients, staff, topics, unsubscribes
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import (
    PUBLIC_URL,
    Clock,
    ok,
    peer_settings,
    person,
    timeline,
    topic,
    wait_for,
)
from tests.integration.test_refusal_reasons import csrf_of
from tests.peers.smtp import SmtpPeer
from tests.peers.twilio import TwilioPeer
from tests.serving import serving

HUB_NUMBER = "+15005550006"
SMS_WEBHOOK = f"{PUBLIC_URL}/inbound/twilio/sms"
ANNA, BORIS, CARLA = "+14155550201", "+14155550202", "+14155550203"
OLGA, PAVEL = "+14155550211", "+14155550212"


@dataclass
class Live:
    client: TestClient
    auth: dict[str, str]
    peer: TwilioPeer
    runtime: Runtime

    def texts_to(self, number: str) -> list[str]:
        return [str(a.form["Body"]) for a in self.peer.accepted if a.form.get("To") == number]

    def told(self) -> list[Notification]:
        with self.runtime.reads() as session:
            query = select(Notification).where(Notification.source == client_events.SOURCE)
            return list(session.scalars(query.order_by(Notification.id)))

    def waiting(self) -> int:
        with self.runtime.reads() as session:
            return int(session.scalar(select(func.count()).select_from(ClientEventMessage)) or 0)

    def ids(self, *external_ids: str) -> list[int]:
        with self.runtime.reads() as session:
            query = select(Contact.id).where(Contact.external_id.in_(external_ids))
            return sorted(session.scalars(query))


def teams_and_people(client: TestClient, auth: dict[str, str]) -> None:
    """Two teams; Anna (north) owns Olga and Pavel, Carla is in north too, Boris in south."""
    for key in ("north", "south"):
        ok(client.put(f"/v1/teams/{key}", json={"name": key.title()}, headers=auth))
    topic(client, auth, "offers", name="Offers", allowed_channels=["email", "sms"])
    for name, phone, team in (("anna", ANNA, "north"), ("boris", BORIS, "south")):
        person(client, auth, name, kind="employee", name=name.title(), phone=phone, teams=[team])
    person(client, auth, "carla", kind="employee", name="Carla", phone=CARLA, teams=["north"])
    for name, phone in (("olga", OLGA), ("pavel", PAVEL)):
        person(
            client,
            auth,
            name,
            name=f"{name.title()} Client",
            phone=phone,
            email=f"{name}@example.com",
            owner="anna",
            teams=["north"],
            subscribe={"offers": ["sms"]},
        )


def hear(
    client: TestClient,
    auth: dict[str, str],
    employee: str,
    topic_key: str,
    scope: str,
    channels: list[str],
    frequency: str = "immediate",
) -> Any:
    body = {"channels": channels, "scope": scope, "frequency": frequency}
    path = f"/v1/contacts/{employee}/subscriptions/{topic_key}"
    return ok(client.put(path, json=body, headers=auth))


@pytest.fixture
def live(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Live]:
    monkeypatch.setenv("HUB_TWILIO_RATE_PER_SECOND", "100")
    with TwilioPeer(auth_token="live-callback-token") as peer:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            public_url=PUBLIC_URL,
            sweep_interval_seconds=0.2,
            **peer_settings(twilio=peer),
        )
        runtime = Runtime.build(settings)
        workers = Workers(runtime)
        workers.start()
        app = create_app(runtime=runtime)
        try:
            with serving(app) as base:
                peer.hub = base
                client = TestClient(app, raise_server_exceptions=False)
                auth = make_key(runtime, "crm", Scope.ADMIN)
                teams_and_people(client, auth)
                yield Live(client, auth, peer, runtime)
        finally:
            workers.stop()
            runtime.close()
        assert peer.violations == []


def test_a_clients_stop_reaches_their_owner_by_sms_within_seconds_and_no_other_team(
    live: Live,
) -> None:
    client, auth = live.client, live.auth
    mine = hear(client, auth, "anna", "clients.refusals", "mine", ["sms"])
    assert (mine["topic"], mine["scope"], mine["channels"]) == ("clients.refusals", "mine", ["sms"])
    hear(client, auth, "carla", "clients.refusals", "teams", ["sms"])
    hear(client, auth, "boris", "clients.refusals", "teams", ["sms"])

    started = time.monotonic()
    stop = live.peer.text_hub(SMS_WEBHOOK, sender=OLGA, to=HUB_NUMBER, body="STOP")
    assert stop.status == 200
    (text,) = wait_for("Anna's SMS within seconds", lambda: live.texts_to(ANNA), timeout=10)
    took = time.monotonic() - started
    print(f"\nclient STOP to the owner's SMS: {took:.2f} s: {text!r}")
    assert "Olga Client" in text
    assert f"{PUBLIC_URL}/console/contacts/olga" in text
    assert "stop" in text.lower()
    wait_for("Carla's SMS (her team's client)", lambda: live.texts_to(CARLA))

    # One notification for the one STOP (its inbound text is not a reply too), named to the
    # owner and the teams-scoped colleague: Boris's team is south, he is not among them.
    (told,) = live.told()
    assert told.recipients == live.ids("anna", "carla")
    assert live.texts_to(BORIS) == []
    boris = timeline(client, auth, "boris")
    assert not [e for e in boris if e["type"].startswith("delivery.")]
    assert live.waiting() == 0
    # An ordinary notification of the topic: its deliveries explain themselves like any.
    body = ok(client.get(f"/v1/notifications/{told.id}", headers=auth))
    anna = next(d for d in body["deliveries"]["items"] if d["contact"] == "anna")
    why = ok(client.get(f"/v1/deliveries/{anna['id']}/explain", headers=auth))
    assert "clients.refusals" in str(why)


def test_an_employee_erased_or_gone_from_the_team_hears_no_more(live: Live) -> None:
    client, auth = live.client, live.auth
    hear(client, auth, "anna", "clients.replies", "mine", ["sms"])
    hear(client, auth, "carla", "clients.replies", "teams", ["sms"])
    live.peer.text_hub(SMS_WEBHOOK, sender=PAVEL, to=HUB_NUMBER, body="Call me about the offer")
    (to_anna,) = wait_for("Anna's SMS", lambda: live.texts_to(ANNA))
    assert "Pavel Client" in to_anna
    assert "Call me about the offer" in to_anna
    wait_for("Carla's SMS", lambda: live.texts_to(CARLA))

    ok(client.patch("/v1/contacts/carla", json={"teams": []}, headers=auth))
    ok(client.delete("/v1/contacts/anna", headers=auth))
    with live.runtime.reads() as session:
        pavel = session.scalars(select(Contact).where(Contact.external_id == "pavel")).one()
        assert pavel.owner_id is None  # the owner's erasure leaves the client unowned
    live.peer.text_hub(SMS_WEBHOOK, sender=PAVEL, to=HUB_NUMBER, body="Hello again")
    wait_for(
        "the second reply on the timeline",
        lambda: any(
            e["type"] == "inbound.message" and e["changes"]["body"] == "Hello again"
            for e in timeline(client, auth, "pavel")
        ),
    )
    wait_for("the outbox to be emptied", lambda: live.waiting() == 0)
    assert len(live.told()) == 1  # the first reply only: nobody hears of the second
    assert len(live.texts_to(CARLA)) == 1


def test_a_scope_is_only_for_client_topics_and_all_only_for_staff_who_see_all(
    live: Live,
) -> None:
    client, auth = live.client, live.auth
    path = "/v1/contacts/anna/subscriptions"
    wrong = client.put(f"{path}/offers", json={"scope": "mine"}, headers=auth)
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["error"]["details"][0]["field"] == "scope"
    everyone = client.put(f"{path}/clients.failures", json={"scope": "all"}, headers=auth)
    assert everyone.status_code == 422, everyone.text
    assert "admin or marketer" in everyone.json()["error"]["details"][0]["message"]
    unknown = client.put(f"{path}/clients.failures", json={"scope": "world"}, headers=auth)
    assert unknown.status_code == 422
    client_side = client.put(
        "/v1/contacts/olga/subscriptions/clients.failures", json={}, headers=auth
    )
    assert client_side.status_code == 422  # the topic is for employees
    assert client_side.json()["error"]["details"][0]["field"] == "topic"
    listed = ok(client.get("/v1/topics/clients.failures", headers=auth))
    assert (listed["audience"], listed["public"]) == ("employees", True)
    made = client.put(
        "/v1/topics/clients.failures",
        json={"name": "Failures", "audience": "clients", "allowed_channels": ["email"]},
        headers=auth,
    )
    assert made.status_code == 422
    assert made.json()["error"]["details"][0]["field"] == "audience"


# The digest: a fixed clock the test moves (the workers' own), so no hour of the day matters.
START = dt.datetime(2026, 7, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def clocked(
    database_url: str,
) -> Iterator[tuple[TestClient, dict[str, str], SmtpPeer, Workers, Clock, Runtime]]:
    clock = Clock(START)
    with SmtpPeer() as smtp:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            public_url=PUBLIC_URL,
            **peer_settings(smtp),
        )
        runtime = Runtime.build(settings)
        workers = Workers(runtime, clock=clock)
        workers.start(sweep=False)  # the test sweeps, after moving the clock
        try:
            with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
                auth = make_key(runtime, "crm", Scope.ADMIN)
                yield client, auth, smtp, workers, clock, runtime
        finally:
            workers.stop()
            runtime.close()


def test_a_daily_digest_lists_the_days_refusals_with_their_reasons(
    clocked: tuple[TestClient, dict[str, str], SmtpPeer, Workers, Clock, Runtime],
) -> None:
    client, auth, smtp, workers, clock, runtime = clocked
    topic(client, auth, "offers", name="Offers")
    topic(client, auth, "news", name="News")
    person(
        client,
        auth,
        "dana",
        kind="employee",
        name="Dana",
        email="dana@corp.example",
        timezone="Europe/Berlin",
    )
    hear(client, auth, "dana", "clients.refusals", "mine", ["email"], frequency="daily")
    for name in ("ann", "ben"):
        person(
            client,
            auth,
            name,
            name=f"{name.title()} Client",
            email=f"{name}@example.com",
            owner="dana",
            subscribe={"offers": ["email"], "news": ["email"]},
        )

    # Ann leaves Offers on her preferences page and says why; Ben is unsubscribed by the API.
    with runtime.reads() as session:
        ann = session.scalars(select(Contact).where(Contact.external_id == "ann")).one()
        signer = unsubscribes.signer(runtime.settings)
        page = (
            f"/preferences/{signer.sign(Purpose.PREFERENCES, ann.id, None, link_key=ann.link_key)}"
        )
    form = {"csrf": csrf_of(client.get(page).text, page)}
    form |= {"topic:news": "on", "channels:news": "email", "channels:offers": "email"}
    answered = client.post(page, data=form)
    assert "Would you tell us why?" in answered.text
    why = {"csrf": csrf_of(answered.text, f"{page}/why"), "topic": "offers"}
    why |= {"reason": "too_many", "note": "Three a day is too many"}
    assert client.post(f"{page}/why", data=why).status_code == 200
    assert client.delete("/v1/contacts/ben/subscriptions/offers", headers=auth).status_code == 200

    workers.sweep_once()  # the outbox becomes Dana's notifications, which wait for 09:00
    with runtime.reads() as session:
        query = select(Notification.id).where(Notification.source == client_events.SOURCE)
        told = list(session.scalars(query))
    assert len(told) == 3  # Ann left, Ann said why, Ben left

    def deferred() -> bool:
        states = [
            ok(client.get(f"/v1/notifications/{n}", headers=auth))["deliveries"]["items"]
            for n in told
        ]
        return all(items and items[0]["reason"] == "digest" for items in states)

    wait_for("Dana's three items to wait for her digest", deferred)
    clock.set(dt.datetime(2026, 7, 2, 6, 59, tzinfo=dt.UTC))  # 08:59 in Berlin
    workers.sweep_once()
    assert smtp.received == []
    clock.set(dt.datetime(2026, 7, 2, 7, 0, 3, tzinfo=dt.UTC))  # 09:00:03
    workers.sweep_once()
    wait_for("the digest", lambda: len(smtp.received) == 1)
    (mail,) = smtp.received
    assert list(mail.rcpt_tos) == ["dana@corp.example"]
    message = mail.message
    assert message["Subject"] == "My clients' refusals: your daily digest (3 updates)"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert text.count("Ann Client") >= 2
    assert "Ben Client" in text
    assert "too many messages" in text
    assert "Three a day is too many" in text
    assert f"{PUBLIC_URL}/console/contacts/ann" in text
    reasons = [e for e in timeline(client, auth, "ann") if e["type"] == "refusal.reason"]
    assert [e["reason"] for e in reasons] == ["too_many"]


def test_erasing_a_client_blanks_what_employees_were_told_of_them(live: Live) -> None:
    client, auth = live.client, live.auth
    hear(client, auth, "anna", "clients.replies", "mine", ["sms"])
    live.peer.text_hub(SMS_WEBHOOK, sender=PAVEL, to=HUB_NUMBER, body="My new flat is at...")
    wait_for("Anna's SMS", lambda: live.texts_to(ANNA))
    (told,) = live.told()
    assert told.data["client"]["name"] == "Pavel Client"
    assert told.about_contact_id == live.ids("pavel")[0]

    ok(client.delete("/v1/contacts/pavel", headers=auth))
    (blanked,) = live.told()
    assert blanked.data == erased_clients.ERASED  # a digest still waiting says only that
    assert "My new flat" not in str(blanked.data)
    assert blanked.about_contact_id is None


def test_a_saved_all_narrows_to_mine_when_the_staff_account_no_longer_sees_all(
    live: Live,
) -> None:
    client, auth = live.client, live.auth
    with live.runtime.sessions() as session:
        user = staff.create(
            session, "anna@corp.example", "correct horse battery", StaffRole.MARKETER
        )
        user.contact_id = live.ids("anna")[0]
        session.commit()
    chosen = hear(client, auth, "anna", "clients.failures", "all", ["sms"])
    assert chosen["scope"] == "all"
    with live.runtime.sessions() as session:
        demoted = session.scalars(select(StaffUser)).one()
        demoted.role = StaffRole.VIEWER
        session.commit()
    path = "/v1/contacts/anna/subscriptions/clients.failures"
    changed = ok(client.put(path, json={"frequency": "daily"}, headers=auth))
    assert (changed["scope"], changed["frequency"]) == ("mine", "daily")  # not a 422
    again = client.put(path, json={"scope": "all"}, headers=auth)
    assert again.status_code == 422
    assert client.delete(path, headers=auth).status_code == 200


def test_two_first_uses_of_a_client_topic_at_once_both_get_it(live: Live) -> None:
    start = threading.Barrier(2)
    got: list[str] = []

    def first_use() -> None:
        with live.runtime.sessions() as session:
            start.wait()
            got.append(topics.get(session, "clients.clicks").key)
            session.commit()

    threads = [threading.Thread(target=first_use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert got == ["clients.clicks", "clients.clicks"]
    with live.runtime.reads() as session:
        made = session.scalars(
            select(AuditEntry).where(AuditEntry.resource_key == "clients.clicks")
        )
        assert len(list(made)) == 1  # audited once, by the one that made it
