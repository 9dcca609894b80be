"""`hub serve` as an operator runs it beside a mail system: its SMTP pointed at a relay, a
VERP bounce mailbox, a HELO name, and (optionally) the inbound mail listener the relay sends
DSNs to. On a SQLite file or a fresh PostgreSQL database of its own."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_URL, service_missing
from tests.e2e.test_serve import HUB, free_port
from tests.serving import wait_ready

BOUNCE_DOMAIN = "hub.example"
BOUNCES = f"bounces@{BOUNCE_DOMAIN}"
UNSUBSCRIBE = f"unsubscribe@{BOUNCE_DOMAIN}"
HELO = "hub.hub-test.example"
PUBLIC_URL = f"https://{BOUNCE_DOMAIN}"
T = TypeVar("T")


@dataclass
class RunningHub:
    base: str
    api: httpx.Client  # with an admin key
    inbound_port: int | None
    log: Path  # what `hub serve` printed

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@contextlib.contextmanager
def database(kind: str, folder: Path) -> Iterator[str]:
    """A SQLite file in `folder`, or a new PostgreSQL database dropped afterwards."""
    if kind == "sqlite":
        yield f"sqlite:///{folder / 'hub.db'}"
        return
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"hub_mta_{uuid.uuid4().hex[:10]}"
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        service_missing(f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string()}", exc)
    try:
        yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def environment(database_url: str, **settings: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return kept | {"HUB_DATABASE_URL": database_url} | settings


def _hub(cwd: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [HUB, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"hub {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def hub_serving(
    cwd: Path,
    database_url: str,
    *,
    smtp_port: int,
    secret: str,
    inbound: bool,
) -> Iterator[RunningHub]:
    """`hub serve` on a free port, sending through the relay at `smtp_port`; with `inbound`,
    its mail listener on a free port too (HUB_INBOUND_MAIL_PORT)."""
    cwd.mkdir(parents=True, exist_ok=True)
    inbound_port = free_port() if inbound else None
    settings = {
        "HUB_SECRET_KEY": secret,
        # Links as a real install has them: https, so List-Unsubscribe-Post is sent (RFC 8058).
        "HUB_PUBLIC_URL": PUBLIC_URL,
        "HUB_SMTP_HOST": "127.0.0.1",
        "HUB_SMTP_PORT": str(smtp_port),
        "HUB_SMTP_HELO_NAME": HELO,
        "HUB_EMAIL_FROM": f"Hub News <news@{BOUNCE_DOMAIN}>",
        "HUB_EMAIL_BOUNCE_ADDRESS": BOUNCES,
        "HUB_UNSUBSCRIBE_MAILTO": UNSUBSCRIBE,
    }
    if inbound_port is not None:
        settings["HUB_INBOUND_MAIL_PORT"] = str(inbound_port)
    env = environment(database_url, **settings)
    _hub(cwd, env, "db", "upgrade")
    key = _hub(cwd, env, "apikey", "create", "mail-test", "--scope", "admin")
    secret_key = key.strip().splitlines()[-1]
    port = free_port()
    log = cwd / "hub-serve.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [HUB, "serve", "--port", str(port)],
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=out,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, process, lambda: log.read_text(errors="replace"))
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret_key}"}, timeout=30)
    try:
        if inbound_port is not None:
            wait_listening(inbound_port, lambda: log.read_text(errors="replace"))
        yield RunningHub(base=base, api=api, inbound_port=inbound_port, log=log)
    finally:
        api.close()
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def wait_listening(port: int, output: Callable[[], str], timeout: float = 20) -> None:
    """Until the inbound mail listener greets (220) on `port`."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 2) as s:
            if s.recv(512).startswith(b"220"):
                return
        time.sleep(0.1)
    pytest.fail(f"the inbound mail listener did not answer on port {port}: {output()}")


def ok(answer: httpx.Response) -> Any:
    assert answer.status_code in {200, 201, 202, 204}, (answer.request.url, answer.text)
    return answer.json() if answer.content else None


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 45) -> T:
    """The first truthy value of `check()` within `timeout` seconds; else fail saying `what`
    and the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    pytest.fail(f"not within {timeout} s: {what} (last seen: {last!r})")


def send_email(
    hub: RunningHub,
    who: str,
    address: str,
    *,
    text: str,
    subject: str,
    html: str | None = None,
    category: str = "marketing",
) -> int:
    """One notification to one person by e-mail on a topic of `category` (a marketing one
    tracks opens and clicks, a transactional one does not); its id."""
    content = {"email_subject": subject, "email_text": text}
    if html is not None:
        content["email_html"] = html
    topic = {
        "name": category.title(),
        "allowed_channels": ["email"],
        "bypass_quiet_hours": True,
        "category": category,
    }
    ok(hub.api.put(f"/v1/topics/{category}", json=topic))
    ok(hub.api.put(f"/v1/contacts/{who}", json={"name": who.title(), "email": address}))
    ok(hub.api.put(f"/v1/contacts/{who}/subscriptions/{category}", json={"channels": ["email"]}))
    created = ok(
        hub.api.post(
            "/v1/notifications",
            headers={"Idempotency-Key": f"{who}-{uuid.uuid4().hex}"},
            json={
                "topic": category,
                "recipients": [who],
                "content": {"": content},
            },
        )
    )
    notification_id: int = created["id"]
    return notification_id


def delivery(hub: RunningHub, notification_id: int) -> dict[str, Any]:
    """The notification's one delivery, as the API shows it."""
    found = ok(hub.api.get(f"/v1/notifications/{notification_id}"))
    items: list[dict[str, Any]] = found["deliveries"]["items"]
    assert len(items) <= 1, items
    return items[0] if items else {}


def delivery_in(hub: RunningHub, notification_id: int, *states: str) -> dict[str, Any]:
    """Wait until the delivery is in one of `states`; it, as the API shows it."""

    def reached() -> dict[str, Any] | None:
        found = delivery(hub, notification_id)
        return found if found.get("state") in states else None

    return wait_for(f"notification {notification_id}'s delivery in {states}", reached)


def suppressions(hub: RunningHub, address: str) -> list[dict[str, Any]]:
    found = ok(hub.api.get("/v1/suppressions", params={"channel": "email", "address": address}))
    items: list[dict[str, Any]] = found["items"]
    return items
