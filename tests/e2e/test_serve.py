"""The real `hub` command, as a new user runs it: serve on SQLite, create a key, use the API."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.serving import wait_ready

pytestmark = pytest.mark.e2e
HUB = shutil.which("hub", path=str(Path(sys.executable).parent)) or "hub"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def hub(
    cwd: Path, *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, *args],
        cwd=cwd,
        env={**os.environ, "HUB_DATABASE_URL": f"sqlite:///{cwd / 'hub.db'}", **(env or {})},
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    env = {**os.environ, "HUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}"}
    process = subprocess.Popen(
        [HUB, "serve", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(base, process, lambda: process.communicate()[0])
    yield base, tmp_path
    process.terminate()
    output = process.communicate(timeout=10)[0]
    assert f"Hub listening on http://127.0.0.1:{port}" in output
    assert "database: sqlite:///" in output


def test_new_user_flow_over_http(server: tuple[str, Path]) -> None:
    base, cwd = server
    created = hub(cwd, "apikey", "create", "billing", "--scope", "contacts", "--scope", "admin")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("hub_")
    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"})

    topic = api.put(
        "/v1/topics/invoices",
        json={"name": "Invoices", "allowed_channels": ["email", "sms"], "required": True},
    )
    assert topic.status_code == 201, topic.text
    contact = api.put(
        "/v1/contacts/cust-42",
        json={
            "name": "Olga",
            "email": "olga@example.com",
            "phone": "+7 912 345-67-89",
            "timezone": "Europe/Moscow",
            "locale": "ru-RU",
        },
    )
    assert contact.status_code == 201, contact.text
    assert contact.json()["phone"] == "+79123456789"
    chosen = api.put("/v1/contacts/cust-42/subscriptions/invoices", json={"channels": ["sms"]})
    assert chosen.status_code == 201, chosen.text
    refused = api.delete("/v1/contacts/cust-42/subscriptions/invoices")
    assert refused.status_code == 409
    timeline = api.get("/v1/contacts/cust-42/timeline").json()["items"]
    assert [e["type"] for e in timeline] == ["subscription.changed", "contact.created"]
    assert timeline[0]["actor"] == "billing"
    assert api.get("/docs").status_code == 200
    assert "/v1/contacts/{external_id}" in api.get("/openapi.json").json()["paths"]


def test_cli_errors_are_clear(tmp_path: Path) -> None:
    missing_scope = hub(tmp_path, "apikey", "create", "x")
    assert missing_scope.returncode != 0
    assert "--scope" in missing_scope.stderr
    bad_scope = hub(tmp_path, "apikey", "create", "x", "--scope", "everything")
    assert bad_scope.returncode != 0
    assert "everything" in bad_scope.stderr
    assert hub(tmp_path, "apikey", "create", "x", "--scope", "notify").returncode == 0
    twice = hub(tmp_path, "apikey", "create", "x", "--scope", "notify")
    assert twice.returncode == 1
    assert "already exists" in twice.stderr
    short = hub(
        tmp_path,
        "user",
        "create",
        "a@example.com",
        "--role",
        "admin",
        "--password-stdin",
        stdin="short\n",
    )
    assert short.returncode == 1
    assert "at least 12" in short.stderr
    ok = hub(
        tmp_path,
        "user",
        "create",
        "a@example.com",
        "--role",
        "admin",
        "--password-stdin",
        stdin="correct horse battery staple\n",
    )
    assert ok.returncode == 0, ok.stderr


def test_bad_settings_are_named_without_echoing_secrets(tmp_path: Path) -> None:
    secret = {"HUB_SECRET_KEY": "do-not-print-me"}
    result = hub(tmp_path, "serve", env={**secret, "HUB_SMTP_PORT": "abc"})
    assert result.returncode == 1
    assert "HUB_SMTP_PORT" in result.stderr
    assert "do-not-print-me" not in result.stderr + result.stdout
    production = {"HUB_ENVIRONMENT": "production", "HUB_HASH_KEY": "a-kept-hash-key"}
    refused = hub(tmp_path, "serve", env=production)
    assert refused.returncode == 1
    assert "HUB_SECRET_KEY must be set" in refused.stderr


def test_docs_are_served_without_a_cdn(server: tuple[str, Path]) -> None:
    base, _ = server
    page = httpx.get(f"{base}/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
        response = httpx.get(f"{base}/docs/assets/{asset}")
        assert response.status_code == 200
        assert len(response.content) > 10_000
