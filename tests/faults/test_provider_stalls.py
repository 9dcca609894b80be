"""A provider that stalls rather than refuses: slower than the send lease (RELIABILITY 2, the
Mautic lesson: a lease that runs out under a live sender lets a second one send again), and
down longer than the retry budget (RELIABILITY 6: delivery pauses and resumes by itself, the
campaign does not fail). Scaled down: the same happens with the defaults, only slower."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.db.models import DeadLetter
from hub.domain import EventType, Scope
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key
from tests.dispatching import hub_running, ok, peer_settings, person, settled, topic, wait_for
from tests.faults.conftest import Figures
from tests.faults.ledger import Tally, contact_log, message_id, reconcile
from tests.peers.smtp import SmtpPeer

RECIPIENTS = 10
CONTENT = {"": {"email_subject": "Notice", "email_text": "Notice"}}


@dataclass
class Wired:
    client: TestClient
    auth: dict[str, str]
    runtime: Runtime
    smtp: SmtpPeer
    database: str

    def notify(self) -> int:
        body = {"topic": "alerts", "content": CONTENT}
        return int(
            ok(self.client.post("/v1/notifications", json=body, headers=self.auth), 202)["id"]
        )

    def tally(self, *notification_ids: int) -> Tally:
        key = message_id(self.runtime.message_keys, "example.com")
        log = contact_log(self.runtime.reads, notification_ids, key=key)
        received = Counter(str(r.message["Message-ID"]) for r in self.smtp.received)
        return reconcile(log.values(), received)


@pytest.fixture
def limits() -> dict[str, Any]:
    """Settings each test scales down."""
    return {}


@pytest.fixture
def wired(
    database_url: str, limits: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Wired]:
    monkeypatch.setenv("HUB_SMTP_POOL_SIZE", "2")
    with SmtpPeer() as smtp:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            **peer_settings(smtp),
            sweep_interval_seconds=0.1,
            delivery_first_retry_seconds=0.2,
            **limits,
        )
        with hub_running(settings) as (client, runtime):
            auth = make_key(runtime, "alerts", Scope.ADMIN, Scope.CONTACTS, Scope.NOTIFY)
            topic(client, auth, "alerts")
            for i in range(RECIPIENTS):
                person(
                    client,
                    auth,
                    f"p{i}",
                    email=f"p{i}@example.com",
                    subscribe={"alerts": ["email"]},
                )
            database = "sqlite" if settings.is_sqlite else "postgresql"
            yield Wired(client, auth, runtime, smtp, database)


@pytest.mark.parametrize("limits", [{"send_lease_seconds": 1.5, "queue_lease_seconds": 1.5}])
def test_a_relay_slower_than_the_send_lease_gets_each_message_once(
    wired: Wired, figures: Figures
) -> None:
    """Each DATA takes 0.5 s over a pool of two connections: the batch of ten needs 2.5 s,
    past its 1.5 s lease. With the defaults the same happens to a batch of 200 over eight
    connections when the relay takes 5 s a message (still well inside its 30 s timeout)."""
    wired.smtp.script("*", at="data", delay=0.5)
    started = time.monotonic()
    notification_id = wired.notify()
    settled(wired.client, wired.auth, notification_id)
    took = time.monotonic() - started
    time.sleep(1.0)  # a copy still on its way would arrive now
    tally = wired.tally(notification_id)
    figures(f"slow-relay[{wired.database}]", **tally.figures(), send_s=took)
    assert (tally.lost, tally.unexpected) == (0, 0)
    assert tally.problems == [], tally.problems
    assert tally.duplicated == 0, "the worker was slow, not lost: nothing was cut mid-flight"
    assert tally.ambiguous == 0


@pytest.mark.parametrize("limits", [{"delivery_max_attempts": 4}])
def test_a_provider_down_for_longer_than_the_retries_resumes_by_itself(
    wired: Wired, figures: Figures
) -> None:
    """Four attempts 0.2 s apart, doubling, give up after about 1.4 s: the relay is down for
    4 s. With the defaults (8 attempts from 10 s) that is a relay down for 25 minutes.

    The channel pauses instead (0.2 s, doubling, up to five minutes), each probe spending no
    attempt, and a notification sent during the pause waits without a call."""
    wired.smtp.script("*", at="mail", reply="421 4.3.2 Service not available, closing")
    down_at = time.monotonic()
    notification_id = wired.notify()
    wait_for("the channel to pause", lambda: wired.smtp.faults_hit() >= RECIPIENTS)
    during = wired.notify()
    time.sleep(4.0)
    refused = wired.smtp.faults_hit()
    wired.smtp.clear()  # the relay is back (nothing had been accepted)
    up_at = time.monotonic()
    body = settled(wired.client, wired.auth, notification_id)
    ended = time.monotonic()
    with wired.runtime.reads() as session:
        parked = session.scalar(select(func.count()).select_from(DeadLetter))
    later = settled(wired.client, wired.auth, during)
    tally = wired.tally(notification_id, during)
    figures(
        f"provider-down[{wired.database}]",
        **tally.figures(),
        failed=body["counts"].get("failed", 0),
        parked=parked,
        refused_calls=refused,
        outage_s=up_at - down_at,
        recovery_s=ended - up_at,
    )
    assert tally.problems == [], tally.problems
    assert body["counts"] == later["counts"] == {"sent": RECIPIENTS}, "everyone hears"
    assert parked == 0
    key = message_id(wired.runtime.message_keys, "example.com")
    log = contact_log(wired.runtime.reads, [notification_id], key=key)
    for d in log.values():
        waits = d.of(EventType.DELIVERY_RETRYING)
        assert d.attempts == 1, "waiting out the outage spent no attempt"
        assert len(waits) >= 4, "it was refused at each probe"
        assert all(e.changes["channel_paused"] for e in waits)
    # Probes at 0, 0.2, 0.6, 1.4 and 3.0 s, one batch each; and nothing of the notification
    # sent during the pause went to the relay (its batches waited for the next probe).
    assert refused <= 6 * RECIPIENTS, refused
    wait_for("the peer", lambda: len(wired.smtp.received) == 2 * RECIPIENTS)
