"""The reports section of the console, as one router for the app: a campaign's report
(`report_pages`) and the notifications, listed and one by one (`notification_pages`)."""

from __future__ import annotations

from fastapi import APIRouter

from hub.console import notification_pages, report_pages

router = APIRouter()
router.include_router(report_pages.router)
router.include_router(notification_pages.router)
