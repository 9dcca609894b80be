"""Campaigns through the real dispatch path to the SMTP peer: segments, schedules (now, an
instant, each recipient's local time, recurring), throttles, dry runs, pause and resume,
progress and CSV; and several schedulers dispatching each occurrence exactly once."""

from __future__ import annotations

import concurrent.futures
import csv
import datetime as dt
import io
import threading
from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.app import create_app
from hub.campaigns.scheduler import tick
from hub.db.base import utcnow
from hub.db.models import CampaignRun, Delivery, Notification
from hub.domain import Scope
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import hub_running, ok, person, timeline, topic, wait_for
from tests.peers.smtp import SmtpPeer

Wired = tuple[TestClient, dict[str, str], Runtime, SmtpPeer]
TEMPLATE = {
    "variants": {
        "": {"email_subject": "Hi {{ contact.name }}", "email_text": "{{ data.offer }}"},
        "ru": {"email_subject": "Привет, {{ contact.name }}", "email_text": "{{ data.offer }}"},
    }
}


@pytest.fixture
def approval() -> bool:
    """Whether campaigns need a second person's approval; a test parametrizes it."""
    return False


@pytest.fixture
def wired(database_url: str, approval: bool) -> Iterator[Wired]:
    with SmtpPeer() as smtp:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            campaign_approval=approval,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            email_from="Shop <shop@example.com>",
            sweep_interval_seconds=0.1,
        )
        with hub_running(settings) as (client, runtime):
            auth = make_key(runtime, "marketing", Scope.CAMPAIGNS, Scope.CONTACTS)
            admin = make_key(runtime, "admin", Scope.ADMIN)
            topic(client, admin, "offers", allowed_channels=["email", "sms"])
            ok(client.put("/v1/templates/offer", json=TEMPLATE, headers=admin))
            yield client, auth, runtime, smtp


def shoppers(client: TestClient, auth: dict[str, str], count: int = 5, **extra: Any) -> None:
    for i in range(count):
        plan = "pro" if i % 2 == 0 else "free"  # 0, 2, 4 are pro
        person(
            client,
            auth,
            f"s{i}",
            name=f"Shopper {i}",
            email=f"s{i}@example.com",
            locale="ru" if i == 0 else "en",
            attributes={"plan": plan},
            subscribe={"offers": ["email"]},
            **extra,
        )


def campaign(client: TestClient, auth: dict[str, str], **fields: Any) -> Any:
    body = (
        {"name": "Winter sale", "topic": "offers", "template": "offer"}
        | {"data": {"offer": "20% off"}}
        | fields
    )
    return ok(client.post("/v1/campaigns", json=body, headers=auth), 201)


def act(client: TestClient, auth: dict[str, str], campaign_id: int, action: str) -> Any:
    return ok(client.post(f"/v1/campaigns/{campaign_id}/{action}", headers=auth))


def until_state(client: TestClient, auth: dict[str, str], campaign_id: int, state: str) -> Any:
    def probe() -> Any:
        body = ok(client.get(f"/v1/campaigns/{campaign_id}", headers=auth))
        return body if body["state"] == state else None

    return wait_for(f"campaign {campaign_id} to be {state}", probe, timeout=30)


def test_a_campaign_to_a_segment_goes_out_and_reports_its_progress(wired: Wired) -> None:
    client, auth, _, smtp = wired
    shoppers(client, auth)
    segment = {"attributes": {"plan": "pro"}}
    counted = client.post(
        "/v1/campaigns/audience", json={"topic": "offers", "segment": segment}, headers=auth
    )
    assert ok(counted) == {"count": 3}
    draft = campaign(client, auth, segment=segment)
    assert draft["state"] == "draft"
    dry = ok(client.post(f"/v1/campaigns/{draft['id']}/dry-run", headers=auth))
    assert dry["audience"] == 3
    assert dry["send"] == {"email": 3}
    assert sorted(dry["samples"]["send:email"]) == ["s0", "s2", "s4"]
    assert smtp.received == []  # a dry run sends nothing

    act(client, auth, draft["id"], "schedule")
    done = until_state(client, auth, draft["id"], "done")
    assert done["counts"]["state"] == {"sent": 3}
    assert done["counts"]["channel"] == {"email": 3}
    (run,) = done["runs"]
    assert run["notification_id"] is not None
    received = {m.rcpt_tos[0]: m.message for m in smtp.wait_for(3)}
    assert set(received) == {"s0@example.com", "s2@example.com", "s4@example.com"}
    assert received["s0@example.com"]["Subject"] == "Привет, Shopper 0"
    assert "delivery.sent" in [e["type"] for e in timeline(client, auth, "s2")]

    exported = client.get(f"/v1/campaigns/{draft['id']}/deliveries.csv", headers=auth)
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted(r["contact"] for r in rows) == ["s0", "s2", "s4"]
    assert {r["state"] for r in rows} == {"sent"}
    assert client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth).status_code == 409


def test_scheduled_for_an_instant_nothing_goes_before_it(wired: Wired) -> None:
    client, auth, _, smtp = wired
    shoppers(client, auth, 2)
    at = (utcnow() + dt.timedelta(seconds=2)).isoformat()
    planned = campaign(client, auth, schedule={"kind": "at", "at": at})
    scheduled = act(client, auth, planned["id"], "schedule")
    assert scheduled["state"] == "scheduled"
    assert dt.datetime.fromisoformat(scheduled["next_run_at"]) == dt.datetime.fromisoformat(at)
    assert smtp.received == []
    until_state(client, auth, planned["id"], "done")
    assert len(smtp.wait_for(2)) == 2
    assert utcnow() >= dt.datetime.fromisoformat(at)


def test_at_ten_in_each_recipients_own_zone(wired: Wired) -> None:
    client, auth, runtime, _ = wired
    zones = {"s0": "Europe/Moscow", "s1": "America/New_York", "s2": "Asia/Tokyo"}
    for external_id, zone in zones.items():
        person(
            client,
            auth,
            external_id,
            email=f"{external_id}@example.com",
            timezone=zone,
            subscribe={"offers": ["email"]},
        )
    # Twelve hours ahead of UTC's wall clock: already reached in Kiribati (UTC+14), so the
    # campaign fans out now, and still ahead in each of these zones, so everyone waits.
    local = (utcnow() + dt.timedelta(hours=12)).replace(tzinfo=None, second=0, microsecond=0)
    planned = campaign(client, auth, schedule={"kind": "local", "at": local.isoformat()})
    act(client, auth, planned["id"], "schedule")
    sending = until_state(client, auth, planned["id"], "sending")

    def deferred() -> Any:
        with runtime.reads() as session:
            rows = session.execute(
                select(Delivery.contact_id, Delivery.state, Delivery.reason, Delivery.due_at)
            ).all()
        return rows if len(rows) == 3 else None

    rows = wait_for("three deferred deliveries", deferred)
    assert {(r.state.value, r.reason) for r in rows} == {("deferred", "local_time")}
    expected = sorted(
        local.replace(tzinfo=ZoneInfo(zone)).astimezone(dt.UTC) for zone in zones.values()
    )
    assert sorted(r.due_at for r in rows) == expected
    assert sending["counts"]["state"] in ({}, {"deferred": 3})
    cancelled = act(client, auth, planned["id"], "cancel")
    assert cancelled["state"] == "cancelled"
    assert cancelled["counts"]["state"] == {"suppressed": 3}
    assert cancelled["refusals"] == {"cancelled": 3}


def test_a_throttle_spaces_the_sends_and_pause_holds_them(wired: Wired) -> None:
    client, auth, _, smtp = wired
    shoppers(client, auth, 4)
    planned = campaign(client, auth, throttle={"email": 30})  # one every two seconds
    act(client, auth, planned["id"], "schedule")
    smtp.wait_for(1, timeout=10)
    paused = act(client, auth, planned["id"], "pause")
    assert paused["state"] == "paused"
    held = len(smtp.received)
    assert held < 4
    threading.Event().wait(2.5)
    assert len(smtp.received) == held  # nothing goes while paused
    act(client, auth, planned["id"], "resume")
    done = until_state(client, auth, planned["id"], "done")
    assert done["counts"]["state"] == {"sent": 4}
    assert len(smtp.wait_for(4)) == 4


def test_a_dry_run_says_who_would_not_receive_it_and_why(wired: Wired) -> None:
    client, auth, _, _ = wired
    shoppers(client, auth, 3)
    ok(
        client.post(
            "/v1/suppressions",
            json={"channel": "email", "address": "s1@example.com"},
            headers=auth,
        )
    )
    # Quiet hours are in the person's own zone (the helper's daytime zone).
    zone = ok(client.get("/v1/contacts/s2", headers=auth))["timezone"]
    now_local = dt.datetime.now(ZoneInfo(zone))
    start = (now_local - dt.timedelta(hours=1)).strftime("%H:%M")
    end = (now_local + dt.timedelta(hours=1)).strftime("%H:%M")
    ok(
        client.patch(
            "/v1/contacts/s2/preferences",
            json={"quiet_hours": {"start": start, "end": end}},
            headers=auth,
        )
    )
    planned = campaign(client, auth)
    dry = ok(client.post(f"/v1/campaigns/{planned['id']}/dry-run", headers=auth))
    assert dry["audience"] == 3
    assert dry["send"] == {"email": 1}
    assert dry["refused"] == {"suppressed:manual": 1}
    assert dry["deferred"] == {"quiet_hours": 1}
    assert dry["samples"]["refused:suppressed:manual"] == ["s1"]
    assert dry["samples"]["deferred:quiet_hours"] == ["s2"]
    (first, last) = dry["waits_until"]["quiet_hours"]
    assert first == last
    assert dt.datetime.fromisoformat(first) > dt.datetime.fromisoformat(dry["starts_at"])


def test_a_recurring_rule_dispatches_each_occurrence_once(wired: Wired) -> None:
    client, auth, runtime, smtp = wired
    shoppers(client, auth, 2)
    rule = {"kind": "recurring", "rrule": "FREQ=SECONDLY;INTERVAL=2;COUNT=2", "timezone": "UTC"}
    planned = campaign(client, auth, schedule=rule)
    act(client, auth, planned["id"], "schedule")
    done = until_state(client, auth, planned["id"], "done")
    assert len(done["runs"]) == 2
    assert done["counts"]["state"] == {"sent": 4}
    assert len(smtp.wait_for(4)) == 4
    with runtime.reads() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 2


def test_bad_campaigns_get_a_422_naming_the_field(wired: Wired) -> None:
    client, auth, _, _ = wired
    cases = [
        ({"topic": "nope"}, "topic"),
        ({"template": "nope"}, "template"),
        ({"channels": ["voice"]}, "channels[0]"),
        ({"schedule": {"kind": "at", "at": "2030-01-01T10:00:00"}}, "schedule"),
        ({"schedule": {"kind": "local", "at": "2030-01-01T10:00:00+03:00"}}, "schedule"),
        ({"schedule": {"kind": "recurring", "cron": "61 * * * *"}}, "schedule"),
        ({"schedule": {"kind": "recurring", "rrule": "FREQ=NEVER"}}, "schedule"),
        ({"schedule": {"kind": "sometime"}}, "schedule"),
        ({"throttle": {"email": 0}}, "throttle"),
        ({"segment": {"timezones": ["Mars/Olympus"]}}, "segment"),
    ]
    base = {"name": "x", "topic": "offers", "template": "offer"}
    for change, field in cases:
        answer = client.post("/v1/campaigns", json=base | change, headers=auth)
        assert answer.status_code == 422, (change, answer.text)
        assert field in answer.text, (change, answer.text)
    notify = make_key(wired[2], "billing", Scope.NOTIFY)
    assert client.post("/v1/campaigns", json=base, headers=notify).status_code == 403
    assert client.get("/v1/campaigns/999", headers=auth).status_code == 404
    draft = campaign(client, auth)
    assert client.post(f"/v1/campaigns/{draft['id']}/resume", headers=auth).status_code == 409


def test_a_test_send_reaches_only_the_address_given(wired: Wired) -> None:
    client, auth, _, smtp = wired
    shoppers(client, auth, 2)
    draft = campaign(client, auth)
    answer = client.post(
        f"/v1/campaigns/{draft['id']}/test",
        json={"email": "mia@acme.example", "name": "Mia"},
        headers=auth,
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["whose"] == (
        "the message Shopper 0 (s0) would get, sent to mia@acme.example"
    )
    (mail,) = smtp.wait_for(1)
    assert mail.rcpt_tos == ("mia@acme.example",)
    assert mail.message["Subject"] == "Привет, Shopper 0"  # as the first shopper gets it
    assert "20% off" in mail.message.get_body(("plain",)).get_content()
    after = ok(client.get(f"/v1/campaigns/{draft['id']}", headers=auth))
    assert after["state"] == "draft"
    assert after["runs"] == []
    bad = client.post(f"/v1/campaigns/{draft['id']}/test", json={"email": "nope"}, headers=auth)
    assert bad.status_code == 422
    assert "email" in bad.text


@pytest.mark.parametrize("approval", [True])
def test_with_approval_a_second_person_must_say_yes(wired: Wired) -> None:
    client, auth, runtime, smtp = wired
    shoppers(client, auth, 1)
    draft = campaign(client, auth)  # created by the "marketing" key
    refused = client.post(f"/v1/campaigns/{draft['id']}/schedule", headers=auth)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "approval_required"
    assert client.post(f"/v1/campaigns/{draft['id']}/approve", headers=auth).status_code == 403
    admin = make_key(runtime, "head-of-marketing", Scope.ADMIN)
    approved = ok(client.post(f"/v1/campaigns/{draft['id']}/approve", headers=admin))
    assert approved["approved_by"] == "head-of-marketing"
    act(client, auth, draft["id"], "schedule")
    until_state(client, auth, draft["id"], "done")
    assert len(smtp.wait_for(1)) == 1
    own = campaign(client, admin)
    selfish = client.post(f"/v1/campaigns/{own['id']}/approve", headers=admin)
    assert selfish.status_code == 409  # its author cannot be the second person


@pytest.mark.postgres
def test_two_schedulers_and_a_hundred_schedule_calls_dispatch_once(
    postgres_database: str,
) -> None:
    """RELIABILITY 7 on PostgreSQL: concurrent schedule calls, then two schedulers ticking
    against each other in threads; every occurrence is dispatched exactly once."""
    settings = Settings(database_url=postgres_database, secret_key=TEST_SECRET)
    runtimes = [Runtime.build(settings) for _ in range(2)]
    try:
        client = TestClient(create_app(runtime=runtimes[0]), raise_server_exceptions=False)
        admin = make_key(runtimes[0], "admin", Scope.ADMIN)
        topic(client, admin, "offers", allowed_channels=["email"])
        ok(client.put("/v1/templates/offer", json=TEMPLATE, headers=admin))
        ids = [campaign(client, admin)["id"] for _ in range(5)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            answers = list(
                pool.map(
                    lambda i: client.post(f"/v1/campaigns/{ids[i % 5]}/schedule", headers=admin),
                    range(100),
                )
            )
        assert sorted(a.status_code for a in answers).count(200) == 5
        assert {a.status_code for a in answers} == {200, 409}

        def ticks(runtime: Runtime) -> int:
            made = 0
            for _ in range(20):
                with runtime.sessions() as session, session.begin():
                    made += len(tick(session, now=utcnow()))
            return made

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            made = sum(pool.map(ticks, runtimes))
        assert made == 5
        with runtimes[0].reads() as session:
            runs = session.execute(
                select(CampaignRun.campaign_id, func.count()).group_by(CampaignRun.campaign_id)
            ).all()
            notifications = session.scalar(select(func.count()).select_from(Notification))
        assert sorted(runs) == sorted((i, 1) for i in ids)
        assert notifications == 5
    finally:
        for runtime in runtimes:
            runtime.close()
        from tests.conftest import truncate

        truncate(postgres_database)
