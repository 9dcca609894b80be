"""Kill `hub worker` mid-fan-out, start it again: every delivery is made, and made once.

PostgreSQL and Redis, as in production. The only copies allowed are sends cut mid-flight,
which must be flagged ambiguous and carry the same Message-ID (RELIABILITY 2).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from sqlalchemy import select

from hub.app import create_app
from hub.db.models import Delivery
from hub.domain import DeliveryState, Scope
from hub.runtime import Runtime
from hub.settings import Settings
from tests.conftest import TEST_SECRET, make_key, truncate
from tests.dispatching import ok, settled
from tests.e2e.test_serve import HUB, free_port
from tests.faults.rig import seed
from tests.peers.smtp import SmtpPeer

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
RECIPIENTS = 3000


@pytest.fixture
def environment(
    postgres_database: str, redis_url: str
) -> Iterator[tuple[Settings, dict[str, str], SmtpPeer]]:
    database_url = postgres_database
    namespace = f"hub-crash-{uuid.uuid4().hex[:8]}"
    with SmtpPeer(keep=False) as smtp:
        settings = Settings(
            database_url=database_url,
            secret_key=TEST_SECRET,
            broker_url=redis_url,
            broker_namespace=namespace,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
        )
        env = os.environ | {
            "HUB_DATABASE_URL": database_url,
            "HUB_SECRET_KEY": TEST_SECRET,
            "HUB_BROKER_URL": redis_url,
            "HUB_BROKER_NAMESPACE": namespace,
            "HUB_SMTP_HOST": smtp.host,
            "HUB_SMTP_PORT": str(smtp.port),
            # Short leases so the test sees recovery in seconds, not minutes.
            "HUB_QUEUE_LEASE_SECONDS": "4",
            "HUB_SEND_LEASE_SECONDS": "4",
            "HUB_SWEEP_INTERVAL_SECONDS": "0.5",
            "HUB_DELIVERY_BATCH_SIZE": "50",
            "HUB_FANOUT_BATCH_SIZE": "200",
        }
        yield settings, env, smtp
        truncate(database_url)
        for key in redis.Redis.from_url(redis_url).scan_iter(f"{namespace}*"):
            redis.Redis.from_url(redis_url).delete(key)


def start_worker(env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [HUB, "worker"], env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def test_killing_the_worker_mid_fan_out_loses_nothing_and_sends_once(
    environment: tuple[Settings, dict[str, str], SmtpPeer], tmp_path: Path
) -> None:
    settings, env, smtp = environment
    runtime = Runtime.build(settings)
    seed(runtime, RECIPIENTS)
    auth = make_key(runtime, "crash-test", Scope.NOTIFY)
    worker = start_worker(env, tmp_path)
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            content = {"": {"email_subject": "Hi {{ contact.name }}", "email_text": "Hello"}}
            accepted = ok(
                client.post(
                    "/v1/notifications", json={"topic": "news", "content": content}, headers=auth
                ),
                202,
            )
            kills = 0
            for threshold in (300, 1200, 2100):
                deadline = time.monotonic() + 60
                while smtp.count_received < threshold and time.monotonic() < deadline:
                    time.sleep(0.01)
                worker.send_signal(signal.SIGKILL)
                worker.wait(timeout=10)
                kills += 1
                worker = start_worker(env, tmp_path)
            body = settled(client, auth, accepted["id"]) if kills else None
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert body is not None
    with runtime.sessions() as session:
        rows = session.execute(
            select(Delivery.id, Delivery.state, Delivery.ambiguous, Delivery.address)
        ).all()
    keys = runtime.message_keys
    runtime.close()
    assert len(rows) == RECIPIENTS
    assert Counter(r.state for r in rows) == {DeliveryState.SENT: RECIPIENTS}
    with smtp.lock:
        received = Counter(smtp.message_ids)
    expected = {
        f"<{keys.key(accepted['id'], r.id, r.address)}@localhost>".encode(): r.ambiguous
        for r in rows
    }
    assert set(received) == set(expected), "every delivery reached the peer"
    duplicated = {mid for mid, n in received.items() if n > 1}
    assert all(expected[mid] for mid in duplicated), "only ambiguous sends may arrive twice"
    assert sum(received.values()) - len(received) <= sum(expected.values())
    print(
        f"{kills} kills: {sum(expected.values())} deliveries cut mid-flight and resent, "
        f"{len(duplicated)} arrived twice"
    )


def test_two_worker_processes_report_one_sum_of_metrics_and_stop_cleanly(
    environment: tuple[Settings, dict[str, str], SmtpPeer], tmp_path: Path
) -> None:
    """`hub worker --processes 2 --metrics-port`: the parent adds up its children's counters;
    SIGTERM lets each child finish its batch and the command exit 0."""
    settings, env, smtp = environment
    runtime = Runtime.build(settings)
    seed(runtime, RECIPIENTS)
    auth = make_key(runtime, "metrics-test", Scope.NOTIFY)
    port = free_port()
    worker = subprocess.Popen(
        [HUB, "worker", "--processes", "2", "--metrics-port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with TestClient(create_app(runtime=runtime)) as client:
            content = {"": {"email_subject": "Hi", "email_text": "Hello"}}
            body = {"topic": "news", "content": content}
            accepted = ok(client.post("/v1/notifications", json=body, headers=auth), 202)
            # The wait includes the worker command's start (an interpreter, then two
            # children): on a loaded two-core CI machine that once took more than 15 s.
            settled(client, auth, accepted["id"], timeout=60)
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    finally:
        started = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=60)
        runtime.close()
    sent = [
        float(line.rsplit(" ", 1)[1])
        for line in scraped.splitlines()
        if line.startswith("hub_deliveries_total{") and 'outcome="sent"' in line
    ]
    assert sent == [float(RECIPIENTS)]
    assert "hub_provider_request_seconds_bucket" in scraped
    assert code == 0
    assert time.monotonic() - started < 30
    assert smtp.count_received == RECIPIENTS
