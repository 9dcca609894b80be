"""Benchmark digests: N people with a daily digest, K messages each, then their digest time.

    .venv/bin/python bench/digest.py [--people 10000] [--items 5]

`hub serve` (embedded default) against the SMTP peer in its own process. K notifications
go to the topic; each person's K deliveries wait for their digest. Then the digest time
comes (the rows fall due, as the clock would make them) and the clock runs until every
item is recorded as sent. Prints digests/s, items/s, hub CPU per digest and peak memory,
and checks the peer received exactly one message per person.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from fanout import NAMES, RESULTS, TEMPLATE, proc_stats, start_peer, stop_peer
from hub_runner import start_hub, stop_hub
from sqlalchemy import create_engine, func, insert, select, update

from hub.db import migrate
from hub.db.models import Delivery, Subscription, Template, Topic
from hub.domain import DeferralReason, DeliveryState, Scope
from hub.runtime import Runtime
from hub.services import apikeys
from hub.settings import Settings


def seed(url: str, people: int) -> str:
    from tests import seeding

    runtime = Runtime.build(Settings(database_url=url))
    migrate.upgrade(runtime.engine)
    now = dt.datetime.now(dt.UTC)
    with runtime.engine.begin() as db:
        topic_id = seeding.topic(db, "bench", ["email"], now=now)
        row = {"key": "bench", "variants": TEMPLATE, "version": 1}
        db.execute(insert(Template), [row | {"created_at": now, "updated_at": now}])
        for start in range(0, people, 5000):
            seeding.subscribers(
                db,
                topic_id,
                (
                    {
                        "id": i + 1,
                        "external_id": f"c{i}",
                        "name": NAMES[i % len(NAMES)],
                        "email": f"person{i}@example.com",
                        "locale": "ru" if i % 3 == 1 else "en",
                        "attributes": {"plan": "pro"},
                        "channels": ["email"],
                    }
                    for i in range(start, min(people, start + 5000))
                ),
                now=now,
            )
        db.execute(update(Topic).values(allowed_frequencies=["immediate", "daily"]))
        db.execute(update(Subscription).values(frequency="daily"))
    with runtime.sessions() as session:
        secret = apikeys.create(session, "bench", [Scope.NOTIFY])
        session.commit()
    runtime.close()
    return secret


def count(engine: Any, *where: Any) -> int:
    with engine.connect() as db:
        return int(db.scalar(select(func.count()).select_from(Delivery).where(*where)) or 0)


def wait(engine: Any, what: str, total: int, timeout: float, *where: Any) -> float:
    started = time.perf_counter()
    last = 0.0
    while (done := count(engine, *where)) < total:
        elapsed = time.perf_counter() - started
        if elapsed - last >= 5:
            print(f"  {elapsed:5.1f} s: {done:,} of {total:,} {what}", flush=True)
            last = elapsed
        if elapsed > timeout:
            raise SystemExit(f"timed out: {done:,} of {total:,} {what}")
        time.sleep(0.2)
    return time.perf_counter() - started


def run(args: argparse.Namespace) -> dict[str, Any]:
    workdir = Path(tempfile.mkdtemp(prefix="hub-bench-digest-"))
    url = f"sqlite:///{workdir}/hub.db"
    total = args.people * args.items
    smtp, smtp_info = start_peer("tests.peers.smtp")
    hub: subprocess.Popen[bytes] | None = None
    try:
        print(f"seeding {args.people:,} people with a daily digest", flush=True)
        key = seed(url, args.people)
        env = os.environ | {
            "HUB_DATABASE_URL": url,
            "HUB_SMTP_HOST": smtp_info["host"],
            "HUB_SMTP_PORT": str(smtp_info["port"]),
            "HUB_SMTP_POOL_SIZE": "16",
            "HUB_EMAIL_FROM": "Bench <bench@example.com>",
            "HUB_LOG_LEVEL": "WARNING",
        }
        hub, base = start_hub(env, workdir)
        engine = create_engine(url)
        for n in range(args.items):
            httpx.post(
                f"{base}/v1/notifications",
                headers={"Authorization": f"Bearer {key}"},
                json={"topic": "bench", "template": "bench", "data": {"product": f"Item {n}"}},
                timeout=30,
            ).raise_for_status()
        waiting = (Delivery.state == DeliveryState.DEFERRED, Delivery.reason == "digest")
        deferral_seconds = wait(
            engine, "items waiting for the digest", total, args.timeout, *waiting
        )
        cpu_before, _ = proc_stats(hub.pid)
        now = dt.datetime.now(dt.UTC)
        started = time.perf_counter()
        with engine.begin() as db:  # the digest time comes
            db.execute(
                update(Delivery)
                .where(Delivery.reason == DeferralReason.DIGEST)
                .values(due_at=now, not_before=now)
            )
        seconds = wait(
            engine, "items sent", total, args.timeout, Delivery.state == DeliveryState.SENT
        )
        seconds = max(seconds, time.perf_counter() - started - 0.2)
        cpu_after, peak = proc_stats(hub.pid)
        engine.dispose()
    finally:
        if hub is not None:
            stop_hub(hub)
        report = stop_peer(smtp)
    if report.get("received") != args.people:
        raise SystemExit(f"the peer received {report} messages, not one per person")
    return {
        "benchmark": "digest",
        "people": args.people,
        "items_per_person": args.items,
        "database": "sqlite",
        "broker": "in-process",
        "seconds_deferring": round(deferral_seconds, 2),
        "seconds_sending": round(seconds, 2),
        "digests_per_second": round(args.people / seconds, 1),
        "items_per_second": round(total / seconds, 1),
        "hub_cpu_ms_per_digest": round(1000 * (cpu_after - cpu_before) / args.people, 3),
        "hub_peak_rss_mb": round(peak / 2**20),
        "peer": report,
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "load_average": os.getloadavg(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=1200)
    result = run(parser.parse_args())
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "digest-sqlite.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    print("| people | items each | digests/s | items/s | CPU ms/digest | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {result['people']:,} | {result['items_per_person']} | {result['digests_per_second']:,} "
        f"| {result['items_per_second']:,} | {result['hub_cpu_ms_per_digest']} "
        f"| {result['hub_peak_rss_mb']} |"
    )
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
