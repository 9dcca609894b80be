"""How long a campaign's engagement figures take for a campaign to 100,000 people, on SQLite.

    .venv/bin/python bench/engagement_figures.py [--people 100000] [--runs 5]

Seeds a migrated SQLite file with tests/engaging.py `large` (the campaign report's 100,000
people, e-mail to all and SMS to three in ten, one in a hundred unsubscribing; then opens by
people and privacy proxies, clicks by people and link scanners), and times
`hub.services.engagement_figures.for_campaign` and the whole console report that shows them
(`GET /console/campaigns/{id}/report`, signed in, rendered), printing the best and the median
of `--runs` with the CPU time beside them (a busy machine's wall clock includes other
processes' turns). The goal: well under a second for the figures.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient

from hub.app import create_app
from hub.db import migrate
from hub.db.base import utcnow
from hub.db.models import Campaign
from hub.domain import StaffRole
from hub.runtime import Runtime
from hub.services import engagement_figures, staff
from hub.settings import Settings
from tests import engaging

PASSWORD = "correct horse battery staple"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(database_url=f"sqlite:///{folder}/hub.db", secret_key="x" * 32)
        runtime = Runtime.build(settings)
        migrate.upgrade(runtime.engine)
        began = time.perf_counter()
        with runtime.engine.begin() as db:
            campaign_id = engaging.large(db, people=args.people, now=utcnow())
        print(f"seeded {args.people:,} people in {time.perf_counter() - began:.1f} s")
        walls, cpu = [], []
        for _ in range(args.runs):
            began, used = time.perf_counter(), time.process_time()
            with runtime.reads() as session:
                campaign = session.get_one(Campaign, campaign_id)
                figures = engagement_figures.for_campaign(session, campaign)
            walls.append(time.perf_counter() - began)
            cpu.append(time.process_time() - used)
        pages = []
        with TestClient(create_app(runtime=runtime)) as client:
            _sign_in(client, runtime)
            for _ in range(args.runs):
                began = time.perf_counter()
                answer = client.get(f"/console/campaigns/{campaign_id}/report")
                pages.append(time.perf_counter() - began)
                assert answer.status_code == 200, answer.status_code
                assert 'id="eng-opened"' in answer.text
        runtime.close()
    print(
        f"figures: {figures.delivered:,} delivered, {figures.opened:,} opened by people "
        f"({figures.opened_all:,} with machines), {figures.clicked:,} clicked "
        f"({figures.clicked_all:,}), {len(figures.links)} links, "
        f"{figures.unsubscribed:,} unsubscribed"
    )
    measured = (("for_campaign", walls), ("for_campaign, CPU", cpu), ("GET report page", pages))
    for name, times in measured:
        print(
            f"{name}: best {min(times) * 1000:.0f} ms, "
            f"median {statistics.median(times) * 1000:.0f} ms over {len(times)} runs"
        )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    return 0


def _sign_in(client: TestClient, runtime: Runtime) -> None:
    with runtime.sessions() as session:
        staff.create(session, "bench@example.com", PASSWORD, StaffRole.VIEWER)
        session.commit()
    form = client.get("/console/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    data = {"csrf": token.group(1), "email": "bench@example.com", "password": PASSWORD}
    client.post("/console/login", data=data)


if __name__ == "__main__":
    raise SystemExit(main())
