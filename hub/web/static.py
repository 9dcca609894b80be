"""The pages' shared headers and their stylesheets: Hub's own files, nothing from outside."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response

from hub.web.deps import RuntimeDep

# Nothing from outside the hub, no inline script or style, no framing, and no token leaking
# through the Referer of a link on the page.
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Permissions-Policy": "interest-cohort=()",
}
# A console page that runs Hub's own script (the segment editor's live count) sends this
# policy instead: scripts from the hub itself, and requests back to it. Every other page,
# and every self-service page, runs none.
SCRIPTED_CSP = HEADERS["Content-Security-Policy"].replace(
    "default-src 'none';", "default-src 'none'; script-src 'self'; connect-src 'self';"
)
_HERE = Path(__file__).parent / "static"
_CACHED = {"Cache-Control": "public, max-age=3600", "X-Content-Type-Options": "nosniff"}

router = APIRouter(include_in_schema=False)


@router.get("/static/hub.css")
def css() -> Response:
    return PlainTextResponse(_stylesheet("hub.css"), media_type="text/css", headers=_CACHED)


@router.get("/static/console.css")
def console_css() -> Response:
    return PlainTextResponse(_stylesheet("console.css"), media_type="text/css", headers=_CACHED)


@router.get("/static/reports.css")
def reports_css() -> Response:
    """The campaign report's and the notification pages' own rules."""
    return PlainTextResponse(_stylesheet("reports.css"), media_type="text/css", headers=_CACHED)


@router.get("/static/segments.js")
def segments_js() -> Response:
    """The segment editor's live audience count."""
    script = (_HERE / "segments.js").read_text()
    return PlainTextResponse(script, media_type="text/javascript", headers=_CACHED)


@router.get("/static/live.js")
def live_js() -> Response:
    """Keeps a console page that shows something still moving up to date, pausably."""
    script = (_HERE / "live.js").read_text()
    return PlainTextResponse(script, media_type="text/javascript", headers=_CACHED)


@router.get("/static/brand.css")
def brand_css(runtime: RuntimeDep) -> Response:
    rule = f":root {{ --brand: {runtime.settings.brand_color}; }}\n"
    return PlainTextResponse(rule, media_type="text/css", headers=_CACHED)


def _stylesheet(name: str) -> str:
    return (_HERE / name).read_text()
