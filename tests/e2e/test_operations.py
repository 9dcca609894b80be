"""Operating Hub: Prometheus metrics, JSON logs with request ids and no secrets, readiness,
and a clean stop on SIGTERM, against the real `hub serve` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from hub.logs import Json
from tests.e2e.test_serve import HUB, free_port, hub, wait_ready

pytestmark = pytest.mark.e2e
SMTP_PASSWORD = "smtp-password-never-logged"


@dataclass
class Served:
    base: str
    cwd: Path
    process: subprocess.Popen[str]
    log: Path

    def key(self, *scopes: str) -> dict[str, str]:
        flags = [part for scope in scopes for part in ("--scope", scope)]
        created = hub(self.cwd, "apikey", "create", f"key-{'-'.join(scopes)}", *flags)
        assert created.returncode == 0, created.stderr
        return {"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"}

    def stop(self) -> tuple[int, float, list[dict[str, object]]]:
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=30)
        lines = [line for line in self.log.read_text().splitlines() if line.strip()]
        return code, time.monotonic() - started, [json.loads(line) for line in lines]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = free_port()
    log = tmp_path / "hub.log"
    env = {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
        "HUB_LOG_FORMAT": "json",
        "HUB_SMTP_PASSWORD": SMTP_PASSWORD,  # no SMTP host: e-mail goes to the capture sink
    }
    with log.open("w") as sink:
        process = subprocess.Popen(
            [HUB, "serve", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=sink,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, process, log.read_text)
    yield Served(base, tmp_path, process, log)
    if process.poll() is None:
        process.kill()


def sample(text: str, name: str, **labels: str) -> float | None:
    """A sample's value in the Prometheus text format, or None."""
    for line in text.splitlines():
        if line.startswith(f"{name}{{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
        if not labels and line.startswith(f"{name} "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_logs_and_a_clean_stop(served: Served) -> None:
    admin = served.key("admin")
    api = httpx.Client(base_url=served.base, headers=admin, timeout=10)
    topic = {"name": "News", "allowed_channels": ["email"]}
    assert api.put("/v1/topics/news", json=topic).status_code == 201
    person = {"email": "ann@example.com"}
    assert api.put("/v1/contacts/ann", json=person).status_code == 201
    assert api.put("/v1/contacts/ann/subscriptions/news", json={}).status_code == 201
    body = {"topic": "news", "content": {"": {"email_subject": "Hi", "email_text": "Hello"}}}
    accepted = api.post("/v1/notifications", json=body)
    assert accepted.status_code == 202, accepted.text
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        found = api.get(f"/v1/notifications/{accepted.json()['id']}").json()
        if [d["state"] for d in found["deliveries"]["items"]] == ["sent"]:
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"not sent: {found}")

    assert httpx.get(f"{served.base}/metrics").status_code == 401
    assert httpx.get(f"{served.base}/metrics", headers=served.key("notify")).status_code == 403
    scraped = httpx.get(f"{served.base}/metrics", headers=served.key("metrics"))
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    text = scraped.text
    assert sample(text, "hub_deliveries_total", channel="email", outcome="sent") == 1.0
    assert sample(text, "hub_provider_request_seconds_count", channel="email") == 1.0
    assert sample(text, "hub_http_requests_total", route="/v1/notifications", status="202") == 1
    assert sample(text, "hub_queue_depth", queue="fanout") == 0.0
    assert "# TYPE hub_deliveries_waiting gauge" in text

    token = "eyJhbGciOiJIUzI1NiJ9.not-a-real-link-token"
    page = httpx.get(f"{served.base}/preferences/{token}", headers={"X-Request-ID": "req-42"})
    assert page.headers["x-request-id"] == "req-42"
    made = httpx.get(f"{served.base}/healthz", headers={"X-Request-ID": "bad id <script>"})
    assert len(made.headers["x-request-id"]) == 32  # ours, not the malformed one
    ready = httpx.get(f"{served.base}/readyz").json()
    assert ready == {"status": "ok", "database": "ok", "broker": "ok"}

    code, seconds, lines = served.stop()
    # uvicorn finishes in-flight requests and the lifespan (the embedded workers stop), then
    # re-raises the SIGTERM it caught, so a supervisor sees how the process ended.
    assert code in {0, -signal.SIGTERM}
    assert seconds < 15
    visit = [line for line in lines if line.get("request_id") == "req-42"]
    assert visit, lines
    assert visit[0]["route"] == "/preferences/{token}"
    assert visit[0]["status"] == 400
    everything = served.log.read_text()
    assert token not in everything  # the link's token is a secret: never in the log
    assert SMTP_PASSWORD not in everything
    said = [str(line["msg"]) for line in lines]
    assert "Application shutdown complete." in said, said[-5:]


def test_the_json_formatter_redacts_secrets_and_names_ids() -> None:
    import logging

    formatter = Json(["s3cret-token-value", "short"])
    record = logging.LogRecord(
        "hub.send", logging.WARNING, __file__, 1, "login failed: %s", ("s3cret-token-value",), None
    )
    record.delivery_id = 7
    line = json.loads(formatter.format(record))
    assert line["msg"] == "login failed: ***"
    assert line["delivery_id"] == 7
    assert line["level"] == "warning"


def test_a_bounce_read_logs_hubs_line_not_each_of_flufls_detectors() -> None:
    import logging

    from hub import logs

    root = logging.getLogger()
    kept = root.handlers[:], root.level
    try:
        logs.configure("INFO", "text", [])
        assert not logging.getLogger("flufl.bounce").isEnabledFor(logging.INFO)
        assert logging.getLogger("hub.services.bounces").isEnabledFor(logging.INFO)
    finally:
        root.handlers[:], level = kept
        root.setLevel(level)


def test_more_concurrent_requests_than_threads_do_not_deadlock(served: Served) -> None:
    """The route threads (40) were all taken by requests waiting for SQLite's write lock
    while its holder waited for a thread to commit on: 64 connections hung the server."""
    import asyncio

    admin = served.key("admin")
    api = httpx.Client(base_url=served.base, headers=admin, timeout=10)
    topic = {"name": "Receipts", "allowed_channels": ["email"], "required": True}
    assert api.put("/v1/topics/receipts", json=topic).status_code == 201
    assert api.put("/v1/contacts/ann", json={"email": "ann@example.com"}).status_code == 201
    content = {"": {"email_subject": "Receipt", "email_text": "Thanks"}}
    body = {"topic": "receipts", "recipients": ["ann"], "content": content}

    async def burst() -> list[int]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(
            base_url=served.base, headers=admin, timeout=25, limits=limits
        ) as client:
            answers = await asyncio.gather(
                *(
                    client.post(
                        "/v1/notifications", json=body, headers={"Idempotency-Key": f"k{n}"}
                    )
                    for n in range(100)
                )
            )
        return [a.status_code for a in answers]

    started = time.monotonic()
    statuses = asyncio.run(burst())
    assert statuses == [202] * 100
    assert time.monotonic() - started < 20  # the write lock's wait is 30 s
