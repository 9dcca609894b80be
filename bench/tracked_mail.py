"""A tracked marketing e-mail sent to people through Hub's public API, read back from the captures.

Used by bench/tracking_redirect.py: `seed` puts a marketing topic (tracking on by default), a
template whose HTML has four links and the people (one import, subscribed by e-mail) into a
running `hub serve`, sends them one notification, waits until every delivery is sent, and
reads each person's click paths and pixel path from `GET /v1/captures` (the capture sink
keeps what an unconfigured channel "sent").
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.fanout import HUB

LINKS = (
    "https://shop.example.com/spring?utm_source=hub&amp;utm_medium=email",
    "https://shop.example.com/garden",
    "https://shop.example.com/guide",
    "https://shop.example.com/stores",
)
TEMPLATE = {
    "variants": {
        "": {
            "email_subject": "Spring is here, {{ contact.name }}",
            "email_html": "<p>Hello {{ contact.name }},</p>"
            f'<p><a href="{LINKS[0]}">Shop the spring sale</a></p>'
            f'<p><a href="{LINKS[1]}">The garden range</a> · <a href="{LINKS[2]}">Planting '
            f'guide</a> · <a href="{LINKS[3]}">Find a store</a></p>',
            "email_text": "Hello {{ contact.name }}, the sale: " + LINKS[0].replace("&amp;", "&"),
        }
    }
}

CLICK = re.compile(r'href="([^"]*/t/c/[^"]+)"')
PIXEL = re.compile(r'src="([^"]*/t/o/[^"]+)"')


@dataclass
class Mail:
    """What one person's captured message carries."""

    delivery_id: int
    clicks: list[str]
    pixel: str


@dataclass
class Seeded:
    """Each person's message: the measured people in order, the warm-up's, the probe's."""

    people: list[Mail]
    warm: list[Mail]
    probe: Mail


def create_key(env: dict[str, str], workdir: Path) -> str:
    scopes = ["--scope", "admin", "--scope", "contacts", "--scope", "notify"]
    created = subprocess.run(
        [HUB, "apikey", "create", "bench", *scopes],
        env=env,
        cwd=workdir,
        capture_output=True,
        text=True,
        check=True,
    )
    return created.stdout.strip().splitlines()[-1]


def seed(api: httpx.Client, *, people: int, warm: int) -> Seeded:
    """Topic, template, `people` + `warm` + one probe person, one notification sent; every
    person's tracked URLs."""
    topic = {
        "name": "Offers",
        "allowed_channels": ["email"],
        "default_channels": ["email"],
        "category": "marketing",
    }
    api.put("/v1/topics/offers", json=topic).raise_for_status()
    for _ in range(10):  # the render process's start counts against the check's 2 s: on a
        saved = api.put("/v1/templates/spring", json=TEMPLATE)  # busy machine, try again
        if saved.status_code != 422 or "longer than" not in saved.text:
            break
        time.sleep(1)
    saved.raise_for_status()
    names = [f"p{i}" for i in range(people)] + [f"w{i}" for i in range(warm)] + ["probe"]
    rows = "".join(
        json.dumps({"external_id": n, "name": n.title(), "email": f"{n}@example.com"}) + "\n"
        for n in names
    )
    imported = api.post(
        "/v1/contacts/import",
        params={
            "subscribe_topic": "offers",
            "subscribe_channels": "email",
            "consent_source": "bench",
        },
        content=rows.encode(),
        headers={"Content-Type": "application/x-ndjson"},
    )
    imported.raise_for_status()
    if imported.json()["subscribed"] != len(names):
        raise SystemExit(f"import: {imported.json()}")
    posted = api.post(
        "/v1/notifications",
        json={"topic": "offers", "template": "spring", "data": {}},
        headers={"Idempotency-Key": "bench-spring"},
    )
    posted.raise_for_status()
    wait_sent(api, int(posted.json()["id"]), len(names))
    mails = captured(api)
    if len(mails) != len(names):
        raise SystemExit(f"{len(mails)} tracked messages captured for {len(names)} people")
    return Seeded(
        people=[mails[f"p{i}@example.com"] for i in range(people)],
        warm=[mails[f"w{i}@example.com"] for i in range(warm)],
        probe=mails["probe@example.com"],
    )


def wait_sent(api: httpx.Client, nid: int, expected: int) -> None:
    deadline = time.monotonic() + 300
    while (counts := api.get(f"/v1/notifications/{nid}").json()["counts"]).get("sent", 0) < (
        expected
    ):
        if time.monotonic() > deadline:
            raise SystemExit(f"notification {nid} not sent in time: {counts}")
        time.sleep(0.25)


def captured(api: httpx.Client) -> dict[str, Mail]:
    """Every captured e-mail with tracked links, by recipient (the captures API, paged)."""
    mails: dict[str, Mail] = {}
    params: dict[str, Any] = {"channel": "email", "limit": 500}
    while True:
        page = api.get("/v1/captures", params=params)
        page.raise_for_status()
        for item in page.json()["items"]:
            html = item["html"] or ""
            pixel = PIXEL.search(html)
            clicks = [urlsplit(u).path for u in CLICK.findall(html)]
            if pixel and clicks and item["delivery_id"] is not None:
                path = urlsplit(pixel.group(1)).path
                mails[item["to"]] = Mail(int(item["delivery_id"]), clicks, path)
        if not (cursor := page.json().get("next_cursor")):
            return mails
        params["cursor"] = cursor
