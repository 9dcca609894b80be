"""RELIABILITY 2: `hub worker --processes 2` killed again and again, alternately with SIGKILL
(every process of the group at once) and SIGTERM (the parent, which stops its children),
during a campaign to 10,000 people, and started again each time. Nothing is lost; a message
arrives twice only when the contact log flags its delivery ambiguous (cut mid-flight and
resent under the same Message-ID)."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import Figures
from tests.faults.ledger import reconcile
from tests.faults.private_redis import PrivateRedis
from tests.faults.rig import Rig, rig, wait_until
from tests.faults.worker_group import WorkerGroup, group_members

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]
RECIPIENTS = int(os.environ.get("HUB_FAULTS_RECIPIENTS", "10000"))
KILLS = int(os.environ.get("HUB_FAULTS_KILLS", "20"))


@pytest.fixture
def recipients() -> int:
    return RECIPIENTS


@pytest.fixture
def wired(postgres_database: str, private_redis: PrivateRedis, recipients: int) -> Iterator[Rig]:
    with rig(
        database_url=postgres_database, broker_url=private_redis.url, recipients=recipients
    ) as wired:
        yield wired


def test_workers_killed_twenty_times_mid_campaign_lose_and_duplicate_nothing(
    wired: Rig, tmp_path: Path, figures: Figures
) -> None:
    seed = int(os.environ.get("HUB_FAULTS_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)
    # Each round lets the peer take a random number of messages first, a small share of what
    # is left, so every kill lands mid-send (in fan-out, a batch, a commit...) and all of
    # them fit in the campaign.
    # Batches of 50 rather than 200: a kill cuts fewer sends at once, and more kills fit in
    # one campaign, since SIGTERM lets every batch in flight finish first.
    env = wired.env | {"HUB_DELIVERY_BATCH_SIZE": "50"}
    group = WorkerGroup(env=env, cwd=tmp_path, processes=2)
    started = time.monotonic()
    started_at = dt.datetime.now(dt.UTC)
    term_cut = 0
    group.start()
    campaign_id = wired.launch()
    recoveries: list[float] = []
    term_stops: list[float] = []
    kills = {signal.SIGKILL: 0, signal.SIGTERM: 0}

    def stuck() -> str:
        counts = dict(wired.states())
        return f"deliveries {counts}, peer {wired.smtp.count_received}\n{group.tail()}"

    try:
        killed_at: float | None = None
        for round_ in range(KILLS):
            base = wired.smtp.count_received
            resumed = wait_until(
                f"the peer to receive mail after start {group.starts}",
                lambda b=base: wired.smtp.count_received > b,
                timeout=90,
                every=0.01,
                why=stuck,
            )
            if killed_at is not None:
                recoveries.append(resumed - killed_at)
            left = RECIPIENTS - len(wired.received())
            quota = base + rng.randint(1, max(1, left // (4 * (KILLS - round_))))
            wait_until(
                f"the peer to receive {quota - base} more after start {group.starts}",
                lambda q=quota: wired.smtp.count_received >= q,
                timeout=90,
                every=0.005,
                why=stuck,
            )
            assert wired.sent() < RECIPIENTS, f"kill {round_ + 1} would come after the last send"
            sig = signal.SIGKILL if round_ % 2 == 0 else signal.SIGTERM
            killed_at = time.monotonic()
            hung = len(group.hangs)
            took = group.stop(sig)
            if sig is signal.SIGTERM and len(group.hangs) == hung:
                term_stops.append(took)
                # A SIGTERM lets each process finish the sends it has begun.
                term_cut += wired.in_flight_since(started_at)
            kills[sig] += 1
            started_at = dt.datetime.now(dt.UTC)
            group.start()
        last_start = time.monotonic()
        ended = wait_until(
            "the campaign to finish",
            lambda: wired.done(campaign_id),
            timeout=300,
            every=0.2,
            why=stuck,
        )
    finally:
        group.stop(signal.SIGTERM)
    ids = wired.campaign_ids(campaign_id)
    assert len(ids) == 1, "two schedulers, killed and restarted, dispatched it once"
    tally = reconcile(wired.log(ids).values(), wired.received())
    figures(
        "kill-workers",
        **tally.figures(),
        recovery_s=max(recoveries, default=0.0),
        drain_s=ended - last_start,
        total_s=time.monotonic() - started,
        sigkill=kills[signal.SIGKILL],
        sigterm=kills[signal.SIGTERM],
        sigterm_stop_s=max(term_stops, default=0.0),
        sigterm_cut=term_cut,
        sigterm_hung=len(group.hangs),
        orphans=group.orphans,
        seed=seed,
    )
    assert tally.problems == [], tally.problems[:20]
    assert tally.deliveries == RECIPIENTS
    assert (tally.lost, tally.unexpected, tally.unknown) == (0, 0, 0)
    assert tally.delivered == RECIPIENTS
    assert group.orphans == 0, "a SIGTERM left worker processes running"
    assert group.hangs == [], "\n\n".join(group.hangs)  # see workers/process.py _serve
    assert term_cut == 0, "a SIGTERM cut sends short instead of letting them finish"
    assert sum(kills.values()) == KILLS


@pytest.mark.parametrize("recipients", [500])
def test_a_worker_parent_killed_alone_leaves_no_worker_behind(
    wired: Rig, tmp_path: Path, figures: Figures
) -> None:
    """`kill -9 <pid>` of the command a supervisor started: its children must not go on
    sending unseen, unstoppable by the supervisor that will start a new command beside them."""
    group = WorkerGroup(env=wired.env, cwd=tmp_path, processes=2)
    group.start()
    assert group.process is not None
    parent = group.process.pid
    try:
        wired.launch()
        wait_until("mail to flow", lambda: wired.smtp.count_received > 0, timeout=90)
        os.kill(parent, signal.SIGKILL)
        group.process.wait(timeout=10)
        killed_at = time.monotonic()
        deadline = killed_at + 15
        while group_members(parent) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = len(group_members(parent))
        waited = time.monotonic() - killed_at
    finally:
        group.stop(signal.SIGKILL)
    figures("parent-killed", processes=2, left_running=left, waited_s=waited)
    assert left == 0, f"{left} worker processes outlived their parent by {waited:.0f} s"
