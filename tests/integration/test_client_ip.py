"""Whose address a request comes from, against the real `hub serve` process on loopback.

By default no proxy is trusted: X-Forwarded-For from 127.0.0.1 changes nothing, so a fresh
header value does not reset the sign-in or link-request throttles. With HUB_TRUSTED_PROXIES
naming the proxy, its header gives the client's address (throttles and session records)."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from hub.db.models import StaffSession
from hub.domain import StaffRole
from hub.runtime import Runtime
from hub.services import staff
from hub.settings import Settings
from tests.conftest import TEST_SECRET
from tests.e2e.test_serve import HUB, free_port, wait_ready

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery staple"
EMAIL = "mia@acme.example"
LIMIT = 10  # sign-ins, and link requests, per client address per 10 minutes


@contextlib.contextmanager
def hub_serve(database_url: str, cwd: Path, **env: str) -> Iterator[httpx.Client]:
    """`hub serve` on a free loopback port, and a client (a browser's cookie jar) for it."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k != "HUB_TRUSTED_PROXIES"}
    environment |= {"HUB_DATABASE_URL": database_url, "HUB_SECRET_KEY": TEST_SECRET} | env
    process = subprocess.Popen(
        [HUB, "serve", "--port", str(port)],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, process, lambda: process.communicate()[0])
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            yield client
    finally:
        process.terminate()
        process.communicate(timeout=20)


def token(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found
    return found.group(1)


def sign_in(client: httpx.Client, csrf: str, forwarded: str, password: str = "wrong") -> int:
    answer = client.post(
        "/console/login",
        data={"csrf": csrf, "email": EMAIL, "password": password},
        headers={"x-forwarded-for": forwarded},
    )
    return answer.status_code


def ask_for_link(client: httpx.Client, csrf: str, forwarded: str, n: int) -> int:
    answer = client.post(
        "/preferences",
        data={"csrf": csrf, "email": f"person{n}@example.com"},  # one each: no per-address limit
        headers={"x-forwarded-for": forwarded},
    )
    return answer.status_code


def add_staff(settings: Settings) -> Runtime:
    runtime = Runtime.build(settings)
    with runtime.sessions() as session:
        staff.create(session, EMAIL, PASSWORD, StaffRole.MARKETER)
        session.commit()
    return runtime


def signed_in_from(runtime: Runtime) -> list[str | None]:
    with runtime.reads() as session:
        return list(session.scalars(select(StaffSession.ip).order_by(StaffSession.id)))


def test_a_forwarded_header_from_loopback_is_not_believed_by_default(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    runtime = add_staff(settings)
    with hub_serve(database_url, tmp_path) as client:
        signed = sign_in(client, token(client.get("/console/login")), "203.0.113.200", PASSWORD)
        assert signed == 303
        assert signed_in_from(runtime) == ["127.0.0.1"]  # the TCP peer, not the header
        csrf = token(client.get("/console/login"))
        tries = [sign_in(client, csrf, f"203.0.113.{n}") for n in range(LIMIT + 1)]
        # The successful sign-in counted too; a new address each time did not help.
        assert tries == [401] * (LIMIT - 1) + [429, 429]
        link = token(client.get("/preferences"))
        asked = [ask_for_link(client, link, f"198.51.100.{n}", n) for n in range(LIMIT + 1)]
        assert asked == [200] * LIMIT + [429]
    runtime.close()


def test_a_trusted_proxy_s_forwarded_header_is_believed(
    database_url: str, settings: Settings, tmp_path: Path
) -> None:
    runtime = add_staff(settings)
    with hub_serve(database_url, tmp_path, HUB_TRUSTED_PROXIES="127.0.0.1") as client:
        signed = sign_in(client, token(client.get("/console/login")), "192.0.2.99", PASSWORD)
        assert signed == 303
        assert signed_in_from(runtime) == ["192.0.2.99"]
        csrf = token(client.get("/console/login"))
        # Each forwarded client has its own count...
        spread = [sign_in(client, csrf, f"203.0.113.{n}") for n in range(LIMIT + 1)]
        assert spread == [401] * (LIMIT + 1)
        link = token(client.get("/preferences"))
        asked = [ask_for_link(client, link, f"198.51.100.{n}", n) for n in range(LIMIT + 1)]
        assert asked == [200] * (LIMIT + 1)
        # ...and one client is held to its own limit: the proxy appends the address it saw,
        # and what the client wrote before it is not believed.
        chained = [ask_for_link(client, link, f"10.9.8.{n}, 192.0.2.7", 50 + n) for n in range(11)]
        assert chained == [200] * LIMIT + [429]
    runtime.close()
