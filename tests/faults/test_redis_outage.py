"""RELIABILITY 1 and 3: Redis stopped for 30 s in the middle of a campaign and started again
empty. The API keeps accepting, nothing is lost, nothing is sent twice unless flagged, and the
sweeper (the database is the truth) feeds the new, empty queue until the backlog drains.

HUB_FAULTS_REDIS_OUTAGE_SECONDS shortens the outage for a quick local run (30 by default).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import Figures
from tests.faults.ledger import reconcile
from tests.faults.private_redis import PrivateRedis
from tests.faults.rig import Rig, rig, wait_until
from tests.faults.worker_group import WorkerGroup

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
RECIPIENTS = int(os.environ.get("HUB_FAULTS_OUTAGE_RECIPIENTS", "3000"))
OUTAGE = float(os.environ.get("HUB_FAULTS_REDIS_OUTAGE_SECONDS", "30"))


@pytest.fixture
def wired(postgres_database: str, private_redis: PrivateRedis) -> Iterator[Rig]:
    # The default queue lease (5 minutes): the jobs Redis lost come back because their
    # queues are empty (sweeper.STRANDED_AFTER), not because their lease ran out.
    with rig(
        database_url=postgres_database,
        broker_url=private_redis.url,
        recipients=RECIPIENTS,
        queue_lease=300,
    ) as wired:
        yield wired


def test_redis_lost_mid_campaign_and_back_empty_loses_and_duplicates_nothing(
    wired: Rig, private_redis: PrivateRedis, tmp_path: Path, figures: Figures
) -> None:
    group = WorkerGroup(env=wired.env, cwd=tmp_path, processes=2)

    def stuck() -> str:
        counts = dict(wired.states())
        return f"deliveries {counts}, peer {wired.smtp.count_received}\n{group.tail()}"

    group.start()
    try:
        campaign_id = wired.launch()
        wait_until(
            "a fifth of the campaign to go out",
            lambda: wired.smtp.count_received >= RECIPIENTS // 5,
            timeout=120,
            every=0.01,
            why=stuck,
        )
        private_redis.stop()
        down_at = time.monotonic()
        at_stop = wired.smtp.count_received
        # The API answers 202 once the notification and its rows are committed; the queue
        # being away only means the sweeper will feed it later.
        asked = time.monotonic()
        accepted = wired.notify("during-the-outage")
        accept_s = time.monotonic() - asked
        during = int(accepted["id"])
        assert wired.notify("during-the-outage") == accepted, "a replay gets the first answer"
        # Batches already taken from the queue still go out; then delivery stalls.
        last, last_at = at_stop, down_at
        while time.monotonic() - down_at < OUTAGE:
            if wired.smtp.count_received != last:
                last, last_at = wired.smtp.count_received, time.monotonic()
            time.sleep(0.05)
        during_outage = last - at_stop
        before = wired.smtp.count_received
        private_redis.start()
        up_at = time.monotonic()
        resumed = wait_until(
            "mail to flow again after Redis came back",
            lambda: wired.smtp.count_received > before,
            timeout=120,
            every=0.01,
            why=stuck,
        )
        ended = wait_until(
            "the campaign and the notification sent during the outage to finish",
            lambda: wired.done(campaign_id, during),
            timeout=240,
            every=0.2,
            why=stuck,
        )
    finally:
        group.stop(signal.SIGTERM)
    ids = [*wired.campaign_ids(campaign_id), during]
    tally = reconcile(wired.log(ids).values(), wired.received())
    figures(
        "redis-outage",
        **tally.figures(),
        recovery_s=ended - up_at,
        stalled_s=up_at - last_at,
        resume_s=resumed - up_at,
        outage_s=up_at - down_at,
        sent_before=at_stop,
        sent_during=during_outage,
        accept_s=accept_s,
    )
    assert tally.problems == [], tally.problems[:20]
    assert tally.deliveries == 2 * RECIPIENTS
    assert (tally.lost, tally.unexpected, tally.unknown) == (0, 0, 0)
    assert tally.delivered == 2 * RECIPIENTS
    assert accept_s < 5, "the API must not wait for the broker"
