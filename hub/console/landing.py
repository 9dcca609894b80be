"""`GET /`: where a person who opens the hub's own address is told where to go: the staff
console, the API reference, and how the people Hub writes to reach their own page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hub.console.pages import page

router = APIRouter(include_in_schema=False)


@router.get("/")
def landing(request: Request) -> Response:
    """No script, nothing secret: the same page for everyone, signed in or not."""
    return page(request, "landing.html", "Hub", None)
