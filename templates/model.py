"""What a template is (per-locale parts) and what rendering it produces, as plain values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Parts:
    """One locale's parts; None means this locale does not define the part."""

    email_subject: str | None = None
    email_html: str | None = None
    email_text: str | None = None
    sms_body: str | None = None
    voice_say: str | None = None
    webhook_json: Any = None  # a JSON value; every string leaf is a template


@dataclass(frozen=True, slots=True)
class TemplateDoc:
    """A template as staff wrote it: variants keyed by locale, "" being the default."""

    key: str
    variants: Mapping[str, Parts]  # "", "ru", "ru-RU", "en-GB"...
    version: int = 1


@dataclass(frozen=True, slots=True)
class Links:
    """The recipient's own links, put in every e-mail footer."""

    preferences_url: str
    unsubscribe_url: str


@dataclass(frozen=True, slots=True)
class Rendered:
    """One channel's rendered parts, ready for an `OutgoingMessage`."""

    subject: str | None = None  # e-mail
    text: str | None = None  # e-mail text / SMS body / voice script
    html: str | None = None  # e-mail HTML (inside the layout)
    body: bytes | None = None  # webhook JSON, serialised (compact, UTF-8)
