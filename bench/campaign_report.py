"""How long a campaign's report takes for a campaign to 100,000 people, on SQLite.

    .venv/bin/python bench/campaign_report.py [--people 100000] [--runs 5]

Seeds a migrated SQLite file with the people, an e-mail to each and an SMS to three in ten in
a mix of states (tests/reporting.py `large`), a timeline event per send and an unsubscribe
in a hundred; then times `hub.campaigns.report.build` and the whole console page
(`GET /console/campaigns/{id}/report`, signed in, rendered), and prints the best and the
median of `--runs`. The goal: well under a second. The load average
is printed beside them: wall-clock times on a busy machine include other processes' turns.
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
from hub.campaigns import report, service
from hub.db import migrate
from hub.db.base import utcnow
from hub.domain import StaffRole
from hub.runtime import Runtime
from hub.services import staff
from hub.settings import Settings
from tests import reporting

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
            campaign_id = reporting.large(db, people=args.people, now=utcnow())
        print(f"seeded {args.people:,} people in {time.perf_counter() - began:.1f} s")
        builds, cpu = [], []
        for _ in range(args.runs):
            began, used = time.perf_counter(), time.process_time()
            with runtime.reads() as session:
                built = report.build(session, service.get(session, campaign_id), now=utcnow())
            builds.append(time.perf_counter() - began)
            cpu.append(time.process_time() - used)
        totals = built.totals
        print(
            f"report: {totals.total:,} deliveries, {totals.sent:,} sent, "
            f"{totals.deferred:,} waiting, {totals.unsubscribed:,} unsubscribed"
        )
        pages = []
        with TestClient(create_app(runtime=runtime)) as client:
            _sign_in(client, runtime)
            for _ in range(args.runs):
                began = time.perf_counter()
                answer = client.get(f"/console/campaigns/{campaign_id}/report")
                pages.append(time.perf_counter() - began)
                assert answer.status_code == 200, answer.status_code
        runtime.close()
    # CPU time too: on a busy machine the wall clock also counts other processes' turns.
    measured = (("report.build", builds), ("report.build, CPU", cpu), ("GET report page", pages))
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
