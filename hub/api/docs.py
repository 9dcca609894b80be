"""The API's OpenAPI description (tags, servers) and its interactive docs, served from the hub
itself: no CDN, so /docs works offline too."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from hub.runtime import Runtime

# fastapi-offline ships Swagger UI 5 (the first to read OpenAPI 3.1, which FastAPI writes);
# only its files are used. A test fetches them, so a change of layout fails loudly.
STATIC = Path(fastapi_offline.__file__).parent / "static"

ASSETS = "/docs/assets"

# In the order a newcomer needs them; every operation has exactly one of these tags, and a
# generated client makes one class of each.
TAGS: list[dict[str, Any]] = [
    {
        "name": "contacts",
        "description": "The people Hub talks to, keyed by your own `external_id`: create or "
        "replace, change some fields, read, erase, list with filters, import in bulk, and "
        "read each one's timeline (every message, change and refusal).",
    },
    {
        "name": "subscriptions",
        "description": "What a person wants to hear (topics, channels in order, frequency) "
        "and how (blocked channels, quiet hours, digest time, tracking). Every change keeps "
        "its consent evidence and is written on the timeline.",
    },
    {
        "name": "topics",
        "description": "What people can subscribe to: its category (transactional or "
        "marketing) decides which rules its messages follow. Five system topics tell "
        "employees of their clients (`clients.replies`, `clients.refusals`, "
        "`clients.failures`, `clients.preferences`, `clients.clicks`); each exists from the "
        "first time its key is used, and a subscription to one has a `scope`: `mine`, "
        "`teams` or `all`.",
    },
    {
        "name": "teams",
        "description": "Groups of employees and clients: a client's owner and teams say who "
        "looks after them.",
    },
    {
        "name": "templates",
        "description": "Message parts per channel and language, checked in a sandbox when "
        "saved; every save a kept version that can be read and restored.",
    },
    {
        "name": "notifications",
        "description": "Tell a topic's subscribers, or named people, something: accepted "
        "once committed, fanned out to each person's channels by the workers.",
    },
    {
        "name": "campaigns",
        "description": "Marketing sends to a topic's audience and a segment: write a draft, "
        "check it with a dry run, schedule it, watch it, pause, resume or cancel it.",
    },
    {
        "name": "segments",
        "description": "Saved, named conditions over contacts, their attributes, "
        "subscriptions and engagement; campaigns name them.",
    },
    {
        "name": "suppressions",
        "description": "Addresses never to use on a channel (hard bounces, STOP, complaints, "
        "erasures), and why.",
    },
    {
        "name": "bounces",
        "description": "Bounce and complaint reports that matched no delivery of this hub.",
    },
    {
        "name": "event endpoints",
        "description": "Other services hear of deliveries, bounces, STOPs and unsubscribes: "
        "signed webhooks (Standard Webhooks), retried, with a log of every attempt.",
    },
    {
        "name": "explain",
        "description": "Why a delivery went (or did not) as it did, and which channels a "
        "message to a person would use now.",
    },
    {
        "name": "dead letters",
        "description": "Work that kept failing, parked for staff to read and replay.",
    },
    {
        "name": "captures",
        "description": "What the development sink received for channels with no provider.",
    },
    {
        "name": "audit",
        "description": "Who changed which configuration (users, keys, endpoints, templates, "
        "topics, segments, campaigns), when, and what it was before and after.",
    },
    {
        "name": "inbound",
        "description": "What providers and mail systems tell Hub: delivery statuses, texts "
        "people send (STOP, START, HELP), keys pressed during calls, bounce reports. Provider "
        "callbacks carry the provider's signature, not an API key.",
    },
    {
        "name": "ops",
        "description": "Liveness and readiness probes, and Prometheus metrics.",
    },
]


def install(app: FastAPI) -> None:
    """Tags and `servers` for the generated description (read when it is first asked for),
    and the docs page with its assets."""
    runtime: Runtime = app.state.runtime
    app.openapi_tags = TAGS
    # Without a trailing slash: clients join it with paths that start with one.
    app.servers = [
        {
            "url": runtime.settings.public_url.rstrip("/"),
            "description": "This hub (HUB_PUBLIC_URL)",
        }
    ]
    app.mount(ASSETS, StaticFiles(directory=STATIC), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
        )
