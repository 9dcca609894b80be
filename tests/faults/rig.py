"""A campaign to thousands of e-mail recipients, as in production: PostgreSQL, Redis, the API
in this process and `hub worker` processes beside it, sending to an SMTP peer."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from hub.app import create_app
from hub.db.models import Campaign, Delivery, Notification
from hub.domain import CampaignState, DeliveryState, Scope
from hub.runtime import Runtime
from hub.settings import Settings
from tests import seeding
from tests.conftest import TEST_SECRET, make_key, truncate
from tests.dispatching import daytime_zone, ok
from tests.faults.ledger import UNSETTLED, Logged, contact_log, message_id
from tests.peers.smtp import SmtpPeer

# Leases short enough to see recovery in seconds, not the default minutes. (A live worker
# renews its send lease, so a slow batch is not taken for a dead one: test_provider_stalls.)
QUEUE_LEASE_SECONDS = 4
SEND_LEASE_SECONDS = 10
TEMPLATE = {
    "variants": {"": {"email_subject": "Hi {{ contact.name }}", "email_text": "{{ data.news }}"}}
}


def seed(runtime: Runtime, recipients: int) -> None:
    """`recipients` people subscribed to "news" by e-mail, in a zone where it is daytime."""
    now = dt.datetime.now(dt.UTC)
    zone = daytime_zone()
    with runtime.engine.begin() as db:
        topic_id = seeding.topic(db, "news", ["email"], now=now)
        people = (
            {"id": i, "external_id": f"c{i}", "name": f"Person {i}", "email": f"p{i}@example.com",
             "locale": "en", "timezone": zone, "channels": ["email"]}
            for i in range(1, recipients + 1)
        )  # fmt: skip
        seeding.subscribers(db, topic_id, people, now=now)


@dataclass
class Rig:
    runtime: Runtime
    client: TestClient
    auth: dict[str, str]
    smtp: SmtpPeer
    env: dict[str, str]  # what `hub worker` is started with

    def launch(self, name: str = "Autumn news") -> int:
        """Create and schedule a campaign to everyone on "news", now; its id."""
        body = {"name": name, "topic": "news", "template": "news", "data": {"news": "Hello"}}
        created = ok(self.client.post("/v1/campaigns", json=body, headers=self.auth), 201)
        ok(self.client.post(f"/v1/campaigns/{created['id']}/schedule", headers=self.auth))
        return int(created["id"])

    def notify(self, key: str) -> Any:
        """A notification to everyone on "news" through the API, under an Idempotency-Key;
        the answer's body (202 once the notification and its rows are committed)."""
        content = {"": {"email_subject": "Also", "email_text": "Another"}}
        body = {"topic": "news", "content": content}
        headers = self.auth | {"Idempotency-Key": key}
        return ok(self.client.post("/v1/notifications", json=body, headers=headers), 202)

    def states(self) -> Counter[str]:
        """Deliveries by state, all notifications."""
        with self.runtime.reads() as session:
            rows = session.execute(select(Delivery.state, func.count()).group_by(Delivery.state))
            return Counter({str(state): int(n) for state, n in rows})

    def campaign_ids(self, campaign_id: int) -> list[int]:
        """The campaign's notifications."""
        with self.runtime.reads() as session:
            query = select(Notification.id).where(Notification.campaign_id == campaign_id)
            return list(session.scalars(query))

    def done(self, campaign_id: int, *more: int) -> bool:
        """The campaign is done and it and the other notifications are fanned out and settled."""
        with self.runtime.reads() as session:
            campaign = session.get_one(Campaign, campaign_id)
            ids = [*self.campaign_ids(campaign_id), *more]
            busy = session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.notification_id.in_(ids), Delivery.state.in_(UNSETTLED))
            )
            fanned = session.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.id.in_(ids), Notification.fanned_out_at.is_not(None))
            )
            return campaign.state is CampaignState.DONE and busy == 0 and fanned == len(ids)

    def received(self) -> Counter[str]:
        """Message-IDs as the SMTP peer received them, with how many copies."""
        with self.smtp.lock:
            return Counter(mid.decode() for mid in self.smtp.message_ids)

    def log(self, notification_ids: list[int]) -> dict[int, Logged]:
        key = message_id(self.runtime.message_keys)
        return contact_log(self.runtime.reads, notification_ids, key=key)

    def in_flight_since(self, moment: dt.datetime) -> int:
        """Deliveries claimed (moved to `sending`) at or after `moment` and still sending."""
        with self.runtime.reads() as session:
            query = select(func.count()).select_from(Delivery)
            return int(
                session.scalar(
                    query.where(
                        Delivery.state == DeliveryState.SENDING, Delivery.updated_at >= moment
                    )
                )
                or 0
            )

    def sent(self) -> int:
        with self.runtime.reads() as session:
            query = select(func.count()).select_from(Delivery)
            return int(session.scalar(query.where(Delivery.state == DeliveryState.SENT)) or 0)


def wait_until(
    what: str, probe: Any, *, timeout: float, every: float = 0.05, why: Any = None
) -> float:
    """Poll `probe` until it is true; the monotonic time it became so. `why()` says what
    the failure message should add (the worker's log, the deliveries' states)."""
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            more = f"\n{why()}" if why is not None else ""
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}{more}")
        time.sleep(every)
    return time.monotonic()


@contextlib.contextmanager
def rig(
    *,
    database_url: str,
    broker_url: str,
    recipients: int,
    queue_lease: float = QUEUE_LEASE_SECONDS,
) -> Iterator[Rig]:
    """Seeded database, API client, SMTP peer; the caller starts the workers with `env`."""
    namespace = f"hub-faults-{os.getpid()}"
    with SmtpPeer(keep=False) as smtp:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            broker_url=broker_url,
            broker_namespace=namespace,
            queue_lease_seconds=queue_lease,
            send_lease_seconds=SEND_LEASE_SECONDS,
        )
        env = os.environ | {
            "HUB_DATABASE_URL": database_url,
            "HUB_SECRET_KEY": TEST_SECRET,
            "HUB_BROKER_URL": broker_url,
            "HUB_BROKER_NAMESPACE": namespace,
            "HUB_SMTP_HOST": smtp.host,
            "HUB_SMTP_PORT": str(smtp.port),
            "HUB_QUEUE_LEASE_SECONDS": str(queue_lease),
            "HUB_SEND_LEASE_SECONDS": str(SEND_LEASE_SECONDS),
            "HUB_SWEEP_INTERVAL_SECONDS": "0.5",
            "HUB_DELIVERY_FIRST_RETRY_SECONDS": "0.5",
            "HUB_LOG_LEVEL": os.environ.get("HUB_FAULTS_LOG_LEVEL", "WARNING"),
        }
        runtime = Runtime.build(settings)
        try:
            seed(runtime, recipients)
            with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
                auth = make_key(runtime, "faults", Scope.CAMPAIGNS, Scope.NOTIFY, Scope.ADMIN)
                ok(client.put("/v1/templates/news", json=TEMPLATE, headers=auth))
                yield Rig(runtime, client, auth, smtp, env)
        finally:
            runtime.close()
            truncate(database_url)
