"""Helpers shared by the dispatch tests: a running hub, seeding through the public API, and
waiting."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from hub.app import create_app
from hub.runtime import Runtime
from hub.settings import Settings
from hub.workers.service import Workers

T = TypeVar("T")

ZONES = (
    "UTC",
    "Europe/Moscow",
    "Asia/Tokyo",
    "America/New_York",
    "Pacific/Auckland",
    "Asia/Kolkata",
    "America/Los_Angeles",
    "Europe/Berlin",
)


@contextmanager
def hub_running(settings: Settings) -> Iterator[tuple[TestClient, Runtime]]:
    """The API and its in-process workers on `settings`; stopped and closed on the way out."""
    runtime = Runtime.build(settings)
    workers = Workers(runtime)
    workers.start()
    try:
        with TestClient(create_app(runtime=runtime), raise_server_exceptions=False) as client:
            yield client, runtime
    finally:
        workers.stop()
        runtime.close()


def daytime_zone(now: dt.datetime | None = None) -> str:
    """A zone where it is now 09:00-19:59, so the SMS and voice legal window is open."""
    moment = now or dt.datetime.now(dt.UTC)
    for zone in ZONES:
        if 9 <= moment.astimezone(ZoneInfo(zone)).hour < 20:
            return zone
    raise AssertionError("no daytime zone in the list")  # the list spans the whole day


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def ok(response: Any, *statuses: int) -> Any:
    assert response.status_code in (statuses or (200, 201)), response.text
    return response.json()


def topic(client: TestClient, auth: dict[str, str], key: str, **fields: Any) -> None:
    body = {
        "name": key.title(),
        "allowed_channels": ["email", "sms", "voice", "webhook"],
        "default_channels": ["email"],
    } | fields
    ok(client.put(f"/v1/topics/{key}", json=body, headers=auth))


def person(
    client: TestClient,
    auth: dict[str, str],
    external_id: str,
    *,
    subscribe: dict[str, list[str]] | None = None,
    **fields: Any,
) -> None:
    body = {"timezone": daytime_zone()} | fields
    ok(client.put(f"/v1/contacts/{external_id}", json=body, headers=auth))
    for topic_key, channels in (subscribe or {}).items():
        ok(
            client.put(
                f"/v1/contacts/{external_id}/subscriptions/{topic_key}",
                json={"channels": channels},
                headers=auth,
            )
        )


def mail_one(
    client: TestClient, auth: dict[str, str], external_id: str, email: str, *, content: Any
) -> tuple[int, Any]:
    """A new contact on topic `news`, sent one e-mail: the notification's id and the settled
    delivery."""
    topic(client, auth, "news")
    person(client, auth, external_id, email=email, subscribe={"news": ["email"]})
    body = {"topic": "news", "content": content, "recipients": [external_id]}
    sent = ok(client.post("/v1/notifications", json=body, headers=auth), 202)
    (delivery,) = settled(client, auth, sent["id"])["deliveries"]["items"]
    return sent["id"], delivery


def notification(client: TestClient, auth: dict[str, str], notification_id: int) -> Any:
    return ok(client.get(f"/v1/notifications/{notification_id}?limit=500", headers=auth))


def settled(
    client: TestClient, auth: dict[str, str], notification_id: int, *, timeout: float = 15.0
) -> Any:
    """Wait until fan-out is done and no delivery is queued or sending."""

    def probe() -> Any:
        body = notification(client, auth, notification_id)
        busy = {"queued", "sending"} & set(body["counts"])
        return body if body["state"] == "fanned_out" and not busy else None

    return wait_for(f"notification {notification_id} to settle", probe, timeout)


def timeline(client: TestClient, auth: dict[str, str], external_id: str) -> list[dict[str, Any]]:
    body = ok(client.get(f"/v1/contacts/{external_id}/timeline?limit=500", headers=auth))
    items: list[dict[str, Any]] = body["items"]
    return items


TWILIO_TOKEN = "callback-token"
PUBLIC_URL = "https://hub.example.com"


def twilio_post(
    client: TestClient, path: str, params: dict[str, str], *, signature: str | None = "valid"
) -> Any:
    """POST a form to an /inbound/twilio/ path the way Twilio does: signed with the auth
    token over the public URL and every field (twilio's own RequestValidator computes it)."""
    from twilio.request_validator import RequestValidator  # type: ignore[import-untyped]

    if signature == "valid":
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_URL + path, params)
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if signature is not None:
        headers["x-twilio-signature"] = signature
    return client.post(path, data=params, headers=headers)


def peer_settings(smtp: Any = None, twilio: Any = None) -> dict[str, Any]:
    """Settings fields that send e-mail to an SMTP peer and SMS and calls to a Twilio peer."""
    fields: dict[str, Any] = {}
    if smtp is not None:
        fields |= {"smtp_host": smtp.host, "smtp_port": smtp.port, "email_from": "hub@example.com"}
    if twilio is not None:
        fields |= {
            "twilio_account_sid": twilio.account_sid,
            "twilio_auth_token": twilio.auth_token,
            "twilio_from": "+15005550006",
            "twilio_base_url": twilio.url,
        }
    return fields


class Clock:
    """A clock the test sets (the workers' `clock`): moved past a time instead of waiting."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now
        self._lock = threading.Lock()

    def __call__(self) -> dt.datetime:
        with self._lock:
            return self.now

    def set(self, now: dt.datetime) -> None:
        with self._lock:
            self.now = now
