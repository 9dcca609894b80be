"""Links in messages lead where `hub serve` listens unless HUB_PUBLIC_URL says otherwise."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from hub.cli import public_url_for
from hub.settings import DEFAULT_PUBLIC_URL, Settings
from tests.e2e.test_serve import HUB, free_port, wait_ready

pytestmark = pytest.mark.e2e
# What a message's text footer carries: its preferences and unsubscribe links.
LINK = re.compile(r"(\S+)/(preferences|unsubscribe)/([A-Za-z0-9._~-]+)")
PRODUCTION = {
    "HUB_ENVIRONMENT": "production",
    "HUB_SECRET_KEY": "a-production-secret-for-this-test-only",
    "HUB_HASH_KEY": "a-kept-hash-key-for-this-test-only",
}


def environment(cwd: Path, **extra: str) -> dict[str, str]:
    """This machine's environment without any HUB_ setting of its own, on a fresh SQLite."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith("HUB_")}
    return kept | {"HUB_DATABASE_URL": f"sqlite:///{cwd / 'hub.db'}"} | extra


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HUB, *args],
        cwd=cwd,
        env=environment(cwd, **env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextlib.contextmanager
def serving(cwd: Path, *args: str, **env: str) -> Iterator[tuple[str, list[str]]]:
    """`hub serve --port <free>` (embedded default); its base URL, and its output once stopped."""
    port = free_port()
    process = subprocess.Popen(
        [HUB, "serve", "--port", str(port), *args],
        cwd=cwd,
        env=environment(cwd, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    output: list[str] = []
    wait_ready(base, process, lambda: process.communicate()[0])
    try:
        yield base, output
    finally:
        process.terminate()
        output.append(process.communicate(timeout=20)[0])


def captured_email(base: str, cwd: Path) -> str:
    """Send one notification through the API and return the text of the e-mail captured."""
    created = run(cwd, "apikey", "create", "links", "--scope", "admin")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {secret}"}) as api:
        topic = {"name": "Receipts", "allowed_channels": ["email"]}
        steps = [
            api.put("/v1/topics/receipts", json=topic),
            api.put("/v1/contacts/ann", json={"name": "Ann", "email": "ann@example.com"}),
            api.put("/v1/contacts/ann/subscriptions/receipts", json={"channels": ["email"]}),
            api.post(
                "/v1/notifications",
                headers={"Idempotency-Key": "receipt-1"},
                json={
                    "topic": "receipts",
                    "content": {"": {"email_subject": "Receipt", "email_text": "Paid."}},
                },
            ),
        ]
        for answer in steps:
            assert answer.status_code in {200, 201, 202}, answer.text
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            items = api.get("/v1/captures", params={"to": "ann@example.com"}).json()["items"]
            if items:
                text: str = items[0]["text"]
                return text
            time.sleep(0.2)
    pytest.fail("no e-mail was captured within 30 s")


def test_links_lead_to_the_port_hub_serve_listens_on(tmp_path: Path) -> None:
    with serving(tmp_path) as (base, output):
        text = captured_email(base, tmp_path)
        links = {kind: f"{root}/{kind}/{token}" for root, kind, token in LINK.findall(text)}
        assert set(links) == {"preferences", "unsubscribe"}, text
        for url in links.values():
            assert url.startswith(f"{base}/"), url
            followed = httpx.get(url)  # the link itself, as a mail client would open it
            assert followed.status_code == 200, (url, followed.text[:300])
            assert "<form" in followed.text
    assert f"links:    {base} (from --host and --port;" in output[0]


def test_hub_public_url_wins_over_the_port(tmp_path: Path) -> None:
    public = "https://hub.example.test"
    with serving(tmp_path, HUB_PUBLIC_URL=public) as (base, output):
        text = captured_email(base, tmp_path)
    roots = {root for root, _, _ in LINK.findall(text)}
    assert roots == {public}, text
    assert base.rsplit(":", 1)[1] not in text  # the port is named nowhere in the message
    assert f"links:    {public} (from HUB_PUBLIC_URL)" in output[0]


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["scheduler"]])
def test_production_refuses_to_start_without_a_public_url(
    tmp_path: Path, command: list[str]
) -> None:
    refused = run(tmp_path, *command, **PRODUCTION)
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr  # one line, no traceback
    assert lines[0].startswith("error: HUB_PUBLIC_URL must be set outside development")
    assert "HUB_PUBLIC_URL=https://" in lines[0]


def test_production_with_a_public_url_gets_past_the_check(tmp_path: Path) -> None:
    # `hub worker` stops at the next thing it needs, a broker: the public URL was accepted.
    answer = run(tmp_path, "worker", **PRODUCTION, HUB_PUBLIC_URL="https://hub.example.test")
    assert answer.returncode == 1
    assert "HUB_PUBLIC_URL" not in answer.stderr
    assert "needs HUB_BROKER_URL" in answer.stderr


def test_scheduler_in_development_warns_where_links_point(tmp_path: Path) -> None:
    assert run(tmp_path, "db", "upgrade").returncode == 0
    process = subprocess.Popen(
        [HUB, "scheduler"],
        cwd=tmp_path,
        env=environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any("scheduler on" in line for line in seen):
        seen.append(process.stdout.readline())
    process.terminate()
    seen.append(process.communicate(timeout=20)[0])
    said = "".join(seen)
    assert "hub scheduler: HUB_PUBLIC_URL is not set" in said, said
    assert f"point at the default {DEFAULT_PUBLIC_URL}" in said
    assert process.returncode == 0


@pytest.mark.parametrize(
    ("host", "links"),
    [
        ("127.0.0.1", "http://127.0.0.1:9000"),
        ("localhost", "http://localhost:9000"),
        ("::1", "http://[::1]:9000"),
        ("0.0.0.0", "http://127.0.0.1:9000"),
        ("::", "http://[::1]:9000"),
    ],
)
def test_the_public_url_from_host_and_port(host: str, links: str) -> None:
    settings, said = public_url_for(Settings(_env_file=None), host=host, port=9000)
    assert settings.public_url == links
    assert settings.public_url_is_set  # the in-process workers see it as given
    assert said.startswith(f"links:    {links} (from ")
    assert "HUB_PUBLIC_URL" in said


def test_set_to_the_default_value_is_still_set() -> None:
    given = Settings(_env_file=None, public_url=DEFAULT_PUBLIC_URL)
    settings, said = public_url_for(given, host="127.0.0.1", port=9000)
    assert settings.public_url == DEFAULT_PUBLIC_URL
    assert said == f"links:    {DEFAULT_PUBLIC_URL} (from HUB_PUBLIC_URL)"


@pytest.mark.parametrize("value", ["", "hub.example.com", "/hub", "ftp://hub.example.com"])
def test_a_public_url_that_would_make_dead_links_is_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="absolute http:// or https:// URL"):
        Settings(_env_file=None, public_url=value)
