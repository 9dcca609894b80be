"""Escalation on engagement through the real app, the SMTP peer and the Twilio-compatible
peer, on an injected clock: an e-mail, then an SMS 30 minutes later unless the e-mail was
opened (or clicked). A person's open stops the SMS; a privacy proxy's fetch of the pixel does
not, so that reader still gets it. The timeline and explain say why each step went or
stopped. The default `reached` still stops the SMS once the mail server accepted the e-mail."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert, select

from hub.app import create_app
from hub.db.models import Delivery, Engagement
from hub.domain import AgentClass, EngagementKind, MachineReason, Scope
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import notification, ok, peer_settings, person, timeline, topic, wait_for
from tests.integration.test_quiet_hours_clock import Clock
from tests.peers.smtp import SmtpPeer
from tests.peers.twilio import TwilioPeer

START = dt.datetime(2026, 7, 1, 8, 0, tzinfo=dt.UTC)  # 10:00 in Berlin: no quiet hours
WAIT = dt.timedelta(minutes=30)
CONTENT = {
    "": {
        "email_subject": "Your parcel is waiting",
        "email_text": "Pick it up at the shop: https://shop.example.com/parcel",
        "sms_body": "Your parcel is waiting at the shop",
    }
}
PHONES = {"ann": "+14155550171", "bob": "+14155550172"}


@dataclass
class Wired:
    client: TestClient
    auth: dict[str, str]
    smtp: SmtpPeer
    twilio: TwilioPeer
    workers: Workers
    runtime: Runtime
    clock: Clock


@pytest.fixture
def wired(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Wired]:
    monkeypatch.setenv("HUB_TWILIO_RATE_PER_SECOND", "100")
    clock = Clock(START)
    with SmtpPeer() as smtp, TwilioPeer() as twilio:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            public_url="https://hub.example.com",
            **peer_settings(smtp, twilio),
        )
        runtime = Runtime.build(settings)
        workers = Workers(runtime, clock=clock)
        workers.start(sweep=False)  # the test sweeps, after moving the clock
        try:
            with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
                auth = make_key(runtime, "parcels", Scope.ADMIN)
                topic(
                    client,
                    auth,
                    "parcels",
                    allowed_channels=["email", "sms"],
                    tracking=True,
                )
                for name, phone in PHONES.items():
                    person(
                        client,
                        auth,
                        name,
                        email=f"{name}@example.com",
                        phone=phone,
                        timezone="Europe/Berlin",
                        subscribe={"parcels": ["email", "sms"]},
                    )
                yield Wired(client, auth, smtp, twilio, workers, runtime, clock)
        finally:
            workers.stop()
            runtime.close()
        assert twilio.violations == []


def deliveries(w: Wired, notification_id: int) -> dict[tuple[str, str], Any]:
    items = notification(w.client, w.auth, notification_id)["deliveries"]["items"]
    return {(d["contact"], d["channel"]): d for d in items}


def post_chain(w: Wired, unless: str | None) -> tuple[int, dict[tuple[str, str], Any]]:
    """The chain posted at START; once both e-mails went and both SMS wait, the rows."""
    sms: dict[str, Any] = {"channel": "sms", "after_minutes": WAIT.total_seconds() / 60}
    if unless is not None:
        sms["unless"] = unless
    body = {"topic": "parcels", "content": CONTENT, "escalation": [{"channel": "email"}, sms]}
    accepted = ok(w.client.post("/v1/notifications", json=body, headers=w.auth), 202)

    def first_step_done() -> Any:
        rows = deliveries(w, accepted["id"])
        states = {key: d["state"] for key, d in rows.items()}
        expected = {
            ("ann", "email"): "sent",
            ("bob", "email"): "sent",
            ("ann", "sms"): "deferred",
            ("bob", "sms"): "deferred",
        }
        return rows if states == expected else None

    rows = wait_for("both e-mails sent and both SMS waiting", first_step_done)
    for name in PHONES:
        sms_row = rows[(name, "sms")]
        assert sms_row["reason"] == "escalation"
        assert sms_row["not_before"].startswith((START + WAIT).isoformat()[:19])
    return accepted["id"], rows


def engage(
    w: Wired,
    row: Any,
    kind: EngagementKind,
    at: dt.datetime,
    *,
    machine: MachineReason | None = None,
) -> None:
    """An open or click as the recorder keeps it (a machine's flagged, with why)."""
    agent = AgentClass.PRIVACY_PROXY if machine else AgentClass.MAIL_CLIENT
    with w.runtime.sessions() as session, session.begin():
        session.execute(
            insert(Engagement).values(
                delivery_id=row["id"],
                notification_id=row["notification_id"],
                contact_id=row["contact_id"],
                kind=kind,
                link_index=1 if kind is EngagementKind.CLICK else 0,
                url="https://shop.example.com/parcel" if kind is EngagementKind.CLICK else None,
                machine=machine is not None,
                machine_reason=machine,
                agent=agent,
                occurred_at=at,
            )
        )


def ids_of(w: Wired, rows: dict[tuple[str, str], Any]) -> dict[tuple[str, str], Any]:
    """The delivery rows' notification and contact ids, which the API does not show."""
    with w.runtime.reads() as session:
        found = {
            d.id: d
            for d in session.scalars(
                select(Delivery).where(Delivery.id.in_([r["id"] for r in rows.values()]))
            )
        }
        return {
            key: row
            | {
                "notification_id": found[row["id"]].notification_id,
                "contact_id": found[row["id"]].contact_id,
            }
            for key, row in rows.items()
        }


def come_due(w: Wired, notification_id: int) -> dict[tuple[str, str], Any]:
    """A minute before the wait ends nothing goes; a minute after, both SMS are decided."""
    w.clock.set(START + WAIT - dt.timedelta(minutes=1))
    w.workers.sweep_once()
    early = deliveries(w, notification_id)
    assert [early[(name, "sms")]["state"] for name in PHONES] == ["deferred", "deferred"]
    assert w.twilio.accepted == []
    w.clock.set(START + WAIT + dt.timedelta(minutes=1))
    w.workers.sweep_once()

    def decided() -> Any:
        rows = deliveries(w, notification_id)
        waiting = [d for d in rows.values() if d["state"] in {"deferred", "queued", "sending"}]
        return rows if not waiting else None

    return wait_for("both SMS steps to be decided", decided)


def event(w: Wired, name: str, channel: str, kind: str) -> dict[str, Any]:
    (found,) = [
        e for e in timeline(w.client, w.auth, name) if e["channel"] == channel and e["type"] == kind
    ]
    return found


def explained_chain(w: Wired, delivery_id: int) -> list[dict[str, Any]]:
    body = ok(w.client.get(f"/v1/deliveries/{delivery_id}/explain", headers=w.auth))
    chain: list[dict[str, Any]] = body["escalation"]
    return chain


def texted(w: Wired) -> list[str]:
    return [a.form["To"] for a in w.twilio.accepted if a.kind == "message"]


def test_only_the_person_who_did_not_open_gets_the_sms(wired: Wired) -> None:
    w = wired
    notification_id, rows = post_chain(w, "opened")
    rows = ids_of(w, rows)
    ann_email, bob_email = rows[("ann", "email")], rows[("bob", "email")]
    opened_at = START + dt.timedelta(minutes=12)
    engage(w, ann_email, EngagementKind.OPEN, opened_at)
    # Bob's mail app sits behind a privacy proxy: it fetched the pixel, he never read it.
    engage(
        w,
        bob_email,
        EngagementKind.OPEN,
        START + dt.timedelta(seconds=20),
        machine=MachineReason.PRIVACY_PROXY,
    )

    after = come_due(w, notification_id)

    ann_sms, bob_sms = after[("ann", "sms")], after[("bob", "sms")]
    assert (ann_sms["state"], ann_sms["reason"]) == ("suppressed", "chain_stopped")
    assert bob_sms["state"] == "sent"
    assert texted(w) == [PHONES["bob"]]

    stopped = event(w, "ann", "sms", "delivery.refused")["changes"]["escalation"]
    assert (stopped["step"], stopped["unless"], stopped["after_seconds"]) == (1, "opened", 1800)
    assert stopped["stopped_by"] == {
        "delivery_id": ann_email["id"],
        "step": 0,
        "channel": "email",
        "what": "opened",
        "at": opened_at.isoformat(),
    }
    went = event(w, "bob", "sms", "delivery.sent")["changes"]["escalation"]
    assert went == {
        "step": 1,
        "unless": "opened",
        "after_seconds": 1800,
        "earlier": [
            {"delivery_id": bob_email["id"], "step": 0, "channel": "email", "state": "sent"}
        ],
    }

    ann_chain = explained_chain(w, ann_sms["id"])
    assert [(s["channel"], s["unless"], s["outcome"]) for s in ann_chain] == [
        ("email", "reached", "first"),
        ("sms", "opened", "stopped"),
    ]
    assert ann_chain[1]["after_seconds"] == 1800
    assert (
        ann_chain[1]["detail"] == "stopped: opened at 2026-07-01 08:12:00 UTC (the e-mail, step 0)"
    )
    bob_chain = explained_chain(w, bob_email["id"])  # any delivery of his shows his chain
    assert [s["outcome"] for s in bob_chain] == ["first", "went"]
    assert bob_chain[1]["detail"] == "went: the e-mail was not opened within 30 minutes"


def test_clicked_waits_for_a_click_and_an_open_is_not_enough(wired: Wired) -> None:
    w = wired
    notification_id, rows = post_chain(w, "clicked")
    rows = ids_of(w, rows)
    clicked_at = START + dt.timedelta(minutes=25)
    engage(w, rows[("ann", "email")], EngagementKind.CLICK, clicked_at)
    engage(w, rows[("bob", "email")], EngagementKind.OPEN, START + dt.timedelta(minutes=3))

    after = come_due(w, notification_id)

    assert after[("ann", "sms")]["reason"] == "chain_stopped"
    assert after[("bob", "sms")]["state"] == "sent"
    assert texted(w) == [PHONES["bob"]]
    stop = event(w, "ann", "sms", "delivery.refused")["changes"]["escalation"]["stopped_by"]
    assert (stop["what"], stop["at"]) == ("clicked", clicked_at.isoformat())
    bob_chain = explained_chain(w, after[("bob", "sms")]["id"])
    assert bob_chain[1]["detail"] == "went: the e-mail had no link followed within 30 minutes"


def test_reached_by_default_stops_the_sms_once_the_email_was_accepted(wired: Wired) -> None:
    w = wired
    notification_id, rows = post_chain(w, None)

    after = come_due(w, notification_id)

    assert [after[(name, "sms")]["reason"] for name in PHONES] == ["chain_stopped"] * 2
    assert texted(w) == []
    stop = event(w, "bob", "sms", "delivery.refused")["changes"]["escalation"]
    assert stop["unless"] == "reached"
    assert (stop["stopped_by"]["what"], stop["stopped_by"]["delivery_id"]) == (
        "accepted",
        rows[("bob", "email")]["id"],
    )
    chain = explained_chain(w, after[("bob", "sms")]["id"])
    assert chain[1]["detail"].startswith("stopped: accepted by the provider at ")
