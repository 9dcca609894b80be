"""The application factory: one FastAPI app per Runtime, nothing built at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hub.api import docs, errors
from hub.api.head import HeadAsGet
from hub.api.limits import BodyLimit
from hub.api.observe import Observe
from hub.api.routes import (
    audit,
    bounces,
    campaigns,
    captures,
    contacts,
    dead_letters,
    esp_feedback,
    event_endpoints,
    explain,
    health,
    imports,
    inbound,
    notification_batches,
    notification_sends,
    notifications,
    segments,
    subscriptions,
    suppressions,
    teams,
    templates,
    topics,
)
from hub.console import admin as console_admin
from hub.console import audience as console_audience
from hub.console import campaign_pages as console_campaigns
from hub.console import capture_pages as console_captures
from hub.console import client_pages as console_clients
from hub.console import landing
from hub.console import pages as console_pages
from hub.console import reports as console_reports
from hub.console import routes as console
from hub.console import segment_pages as console_segments
from hub.console import template_pages as console_templates
from hub.console import topic_pages as console_topics
from hub.console.auth import Sessions
from hub.runtime import Runtime
from hub.selfservice import routes as selfservice
from hub.selfservice import tracking
from hub.selfservice.routes import SelfService
from hub.selfservice.tracking import Tracking
from hub.settings import Settings
from hub.web import static

DESCRIPTION = """
Hub knows who wants to hear what, how and when. Authenticate with
`Authorization: Bearer <api key>` (create one with `hub apikey create NAME --scope S`).
Errors are JSON: `{"error": {"code": "...", "message": "...", "details": ...}}`.
"""


@asynccontextmanager
async def _inbound_mail(runtime: Runtime) -> AsyncIterator[None]:
    """Mail that comes back (bounces, unsubscribes by mail), received on this process's loop
    when HUB_INBOUND_MAIL_PORT is set; `hub inbound-mail` runs the same listener alone."""
    if runtime.settings.inbound_mail_port is None:
        yield
        return
    from hub.inbound_mail.listener import Listener, ListenerOptions

    listener = Listener(runtime, ListenerOptions.from_settings(runtime.settings))
    await listener.start()
    try:
        yield
    finally:
        await listener.stop()


def create_app(
    settings: Settings | None = None,
    *,
    runtime: Runtime | None = None,
    run_workers: bool = False,
) -> FastAPI:
    """`run_workers`: the embedded default, where workers and the sweeper live in this process."""
    if runtime is None:
        settings = settings or Settings()
        # `uvicorn --factory hub.app:create_app` starts here, not in `hub serve`: refuse the
        # same missing public URL outside development.
        settings.require_public_url()
        runtime = Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        workers = None
        if run_workers:
            from hub.workers.service import Workers

            workers = Workers(runtime)
            workers.start()
        try:
            async with _inbound_mail(runtime):
                yield
        finally:
            if workers is not None:
                workers.stop()
            app.state.tracking.recorder.close()
            runtime.close()

    app = FastAPI(
        title="Hub",
        version="1",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # Hub has its own metrics and request log (hub.api.observe); FastAPI's OpenTelemetry
        # hooks asked the global providers on every request whether anyone listens.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.runtime = runtime
    app.state.self_service = SelfService.build(runtime)
    app.state.console_sessions = Sessions(runtime)
    app.state.tracking = Tracking.build(runtime)
    errors.install(app)
    docs.install(app)
    app.include_router(health.router)
    app.include_router(tracking.router)  # the other hot path: a few routes under /t/
    # The API first, its busiest route at the head: each request is matched against the
    # routes in order (twice, in this FastAPI), so the console's hundred routes in front of
    # /v1 cost every API call more than its own validation did.
    for module in (
        notification_sends,
        notification_batches,
        contacts,
        imports,
        subscriptions,
        suppressions,
        topics,
        teams,
        templates,
        notifications,
        campaigns,
        segments,
        captures,
        dead_letters,
        event_endpoints,
        explain,
        audit,
    ):
        app.include_router(module.router, responses=errors.RESPONSES)
    for callbacks in inbound.routers(runtime.settings):
        app.include_router(callbacks)  # signed by the provider, no key: documents its own 400/403
    app.include_router(bounces.router, responses=errors.RESPONSES)
    app.include_router(bounces.reports, responses=errors.RESPONSES)
    app.include_router(esp_feedback.router)  # signed by the provider, no key
    app.include_router(selfservice.router)
    app.include_router(static.router)
    app.include_router(landing.router)
    for pages in (
        console_audience,
        console,
        console_captures,
        console_campaigns,
        console_reports,
        console_templates,
        console_segments,
        console_topics,
        console_admin,
        console_clients,
    ):
        app.include_router(pages.router)
    console_pages.install(app)
    app.add_middleware(HeadAsGet)
    app.add_middleware(
        BodyLimit,
        max_bytes=runtime.settings.max_request_bytes,
        unlimited=(("POST", "/v1/contacts/import"), ("POST", "/console/imports/new")),
    )
    app.add_middleware(Observe)  # added last, so outermost: it times and names all of the above
    return app
