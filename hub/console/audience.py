"""The audience section of the console, as one router for the app: contacts and their
profile, subscriptions and preferences, and imports (whose background runner stops with the
app, through this router's lifespan)."""

from __future__ import annotations

from fastapi import APIRouter

from hub.console import contact_pages, import_pages, import_runner, subscription_pages

router = APIRouter(lifespan=import_runner.lifespan)
router.include_router(contact_pages.router)
router.include_router(subscription_pages.router)
router.include_router(import_pages.router)
