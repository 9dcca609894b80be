"""Render a self-service page: Hub's own templates, autoescaped, sent with strict headers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from fastapi.responses import HTMLResponse

from hub.selfservice.words import Words
from hub.web.static import HEADERS

_HERE = Path(__file__).parent
_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_HERE / "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def page(template: str, words: Words, *, status: int = 200, **context: Any) -> HTMLResponse:
    html = _ENV.get_template(template).render(t=words, lang=words.lang, **context)
    return HTMLResponse(html, status_code=status, headers=HEADERS)
