"""Issue 15.1 against the real `hub serve`: while hostile templates are saved, previewed, posted
inline and sent, `/healthz` keeps answering within 100 ms.

Before the structure limits, the first payload with N=28 blocked `/healthz` for 4.6 s; with
N=40 the process would have been gone for a day.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_serve import hub, server  # noqa: F401  (the fixture)
from tests.integration.test_hardening import FREEZE, FREEZE_FOR_VICTOR

pytestmark = pytest.mark.e2e

# Legal at every step, and slow: the render runs until its 2 s budget stops it.
SLOW = (
    "{% set l = (range(10000)|map('string')|list) * 5 %}"
    "{% for i in range(10000) %}{{ (l|sort)|length }}{% endfor %}"
)


class Pulse:
    """GET /healthz in a loop on its own connection; the slowest answer seen."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self._stop.is_set():
                started = time.perf_counter()
                answer = client.get("/healthz")
                self.latencies.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    self.failures.append(answer.text)
                time.sleep(0.01)

    def __enter__(self) -> Pulse:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(15)


def test_hostile_templates_never_hold_the_server(server: tuple[str, Path]) -> None:  # noqa: F811
    base, cwd = server
    created = hub(cwd, "apikey", "create", "attacker", "--scope", "admin")
    assert created.returncode == 0, created.stderr
    api = httpx.Client(
        base_url=base,
        headers={"Authorization": f"Bearer {created.stdout.strip().splitlines()[-1]}"},
        timeout=30,
    )
    news = {"name": "News", "allowed_channels": ["email"], "default_channels": ["email"]}
    assert api.put("/v1/topics/news", json=news).status_code == 201
    for external_id, name in (("vic", "Victor"), ("ann", "Ann")):
        contact = {"name": name, "email": f"{external_id}@example.com"}
        assert api.put(f"/v1/contacts/{external_id}", json=contact).status_code == 201
        subscribed = api.put(f"/v1/contacts/{external_id}/subscriptions/news", json={})
        assert subscribed.status_code == 201, subscribed.text
    with Pulse(base) as pulse:
        started = time.monotonic()
        saved = api.put(
            "/v1/templates/freeze",
            json={"variants": {"": {"email_subject": "Hi", "email_html": FREEZE}}},
        )
        assert saved.status_code == 422, saved.text
        inline = api.post(
            "/v1/notifications",
            json={"topic": "news", "content": {"": {"email_subject": "Hi", "email_text": FREEZE}}},
        )
        assert inline.status_code == 422, inline.text
        assert time.monotonic() - started < 2  # refused as it is built, not after a budget
        # A template slow by design: its check at save runs the full 2 s budget, then stops.
        budget = api.put("/v1/templates/slow", json={"variants": {"": {"sms_body": SLOW}}})
        assert budget.status_code == 422, budget.text
        assert "longer than 2 s" in budget.text
        # One that only freezes for Victor passes the sample check and fails his delivery.
        trap = api.put(
            "/v1/templates/trap",
            json={"variants": {"": {"email_subject": "Hi", "email_text": FREEZE_FOR_VICTOR}}},
        )
        assert trap.status_code == 201, trap.text
        sent = api.post("/v1/notifications", json={"topic": "news", "template": "trap"})
        assert sent.status_code == 202, sent.text
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            body = api.get(f"/v1/notifications/{sent.json()['id']}").json()
            states = {d["contact"]: d for d in body["deliveries"]["items"]}
            finished = all(d["state"] in {"sent", "failed"} for d in states.values())
            if body["state"] == "fanned_out" and len(states) == 2 and finished:
                break
            time.sleep(0.1)
        assert states["vic"]["state"] == "failed", states
        assert states["vic"]["error_code"] == "template"
        assert states["ann"]["state"] == "sent", states
    assert not pulse.failures
    assert len(pulse.latencies) > 50
    slowest = max(pulse.latencies)
    assert slowest < 0.1, f"/healthz took {slowest * 1000:.0f} ms"
