"""Benchmark a campaign's planning: the audience count, the dry run, and a scheduler tick,
on N subscribers of a topic (embedded SQLite), with a segment that keeps about half.

    .venv/bin/python bench/campaign.py [--recipients 100000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.fanout import RESULTS, parse_mix, seed  # noqa: E402
from hub.campaigns import service  # noqa: E402
from hub.campaigns.dryrun import dry_run  # noqa: E402
from hub.campaigns.scheduler import tick  # noqa: E402
from hub.db.base import utcnow  # noqa: E402
from hub.db.models import Topic  # noqa: E402
from hub.dispatch import audience  # noqa: E402
from hub.domain import ActorKind  # noqa: E402
from hub.runtime import Runtime  # noqa: E402
from hub.schemas.campaigns import CampaignIn  # noqa: E402
from hub.services.actor import Actor  # noqa: E402
from hub.settings import Settings  # noqa: E402

SEGMENT = {"attributes": {"plan": "pro"}}
BENCH = Actor(ActorKind.CLI, "bench", "bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=100_000)
    args = parser.parse_args()
    url = f"sqlite:///{tempfile.mkdtemp(prefix='hub-bench-campaign-')}/hub.db"
    print(f"seeding {args.recipients:,} subscribers", flush=True)
    seed(url, args.recipients, parse_mix("email=1"), "https://example.com/hook")
    runtime = Runtime.build(Settings(database_url=url))
    body = CampaignIn.model_validate(
        {
            "name": "bench",
            "topic": "bench",
            "template": "bench",
            "segment": SEGMENT,
            "data": {"product": "Hub"},
        }
    )
    with runtime.sessions() as session:
        campaign = service.create(session, body, created_by="bench", actor=BENCH)
        session.commit()
        campaign_id = campaign.id
    results: dict[str, object] = {}
    with runtime.reads() as session:
        topic = session.get_one(Topic, 1)
        started = time.perf_counter()
        count = audience.count(session, topic, SEGMENT)
        results["audience_count_ms"] = round(1000 * (time.perf_counter() - started), 1)
        results["audience"] = count
        found = service.get(session, campaign_id)
        tracemalloc.start()
        started = time.perf_counter()
        dry = dry_run(
            session, found, renderer=runtime.renderer, hasher=runtime.hasher, now=utcnow()
        )
        seconds = time.perf_counter() - started
        results["dry_run_seconds"] = round(seconds, 2)
        results["dry_run_people_per_second"] = round(dry.audience / seconds)
        results["dry_run_peak_python_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
        tracemalloc.stop()
        results["dry_run_send"] = dry.send
    with runtime.sessions() as session, session.begin():
        service.schedule(session, campaign_id, now=utcnow(), actor=BENCH)
    with runtime.sessions() as session, session.begin():
        started = time.perf_counter()
        dispatched = tick(session, now=utcnow())
        results["scheduler_tick_ms"] = round(1000 * (time.perf_counter() - started), 1)
        results["dispatched"] = len(dispatched)
    runtime.close()
    report = {
        "benchmark": "campaign",
        "recipients": args.recipients,
        **results,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "campaign.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
