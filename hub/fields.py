"""Validated field types for contact data, shared by the API, the importer and the CLI.

Each type normalises what it accepts (E.164 phones, lower-case e-mail domains, canonical
locale tags) and rejects the rest with a message a caller can act on.
"""

from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
import zoneinfo
from functools import lru_cache
from typing import Annotated, Any

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from pydantic import AfterValidator, BeforeValidator, StringConstraints, WithJsonSchema

from hub.channels import netguard as _netguard
from hub.channels import webhook_urls as _webhook_urls

MAX_ATTRIBUTES_BYTES = 16_384
MAX_ATTRIBUTE_DEPTH = 8
MAX_URL = 2048  # the webhook_url and url columns
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_LOCALE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")
TOPIC_KEY = r"^[a-z0-9][a-z0-9_.\-]{0,99}$"
_KEY = re.compile(TOPIC_KEY)
_SURROGATE = re.compile("[\ud800-\udfff]")


def normalize_external_id(value: str) -> str:
    """NFC, so "café" typed precomposed (U+00E9) or as "e" + U+0301 is one contact. Every way
    an external id comes in, and every lookup by one, goes through here."""
    return value if value.isascii() else unicodedata.normalize("NFC", value)


def nfc_text(value: Any) -> Any:
    """`normalize_external_id` for a validator that runs before the type is known: before
    the length check, which must see what is stored, as NFC can change the length."""
    return normalize_external_id(value) if isinstance(value, str) else value


def no_control_characters(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    return value


def blank_to_none(value: Any) -> Any:
    """CSV cells and careless clients send "" for "no value"."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return value


# The plain addresses nearly every import consists of, which email-validator accepts unchanged
# but for a lower-cased domain: a dot-atom local part of common characters (at most 64), then
# at least two host-name labels (at most 63 each, no hyphen at either end) under an alphabetic
# top-level domain. A match is necessary, not sufficient: `_plain_email` also checks the
# special-use names, hyphen pairs (reserved "ab--" labels, Punycode "xn--") and lengths.
# tests/unit/test_fields.py compares it with email-validator on generated addresses.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_%+\-]+(?:\.[A-Za-z0-9_%+\-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}"
)
_SPECIAL_USE = tuple(SPECIAL_USE_DOMAIN_NAMES)
_CASE_INSENSITIVE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)


def _plain_email(value: str) -> str | None:
    """The normalized form of a plain address, as email-validator would give it; None for any
    other address, which email-validator then checks (it costs ~20 µs an address)."""
    if len(value) > 254 or not _PLAIN_EMAIL.fullmatch(value):
        return None
    local, _, domain = value.partition("@")
    domain = domain.lower()
    if (
        len(local) > 64
        or len(domain) > 253
        or "--" in domain
        or local.lower() in _CASE_INSENSITIVE_MAILBOXES
        or any(domain == name or domain.endswith("." + name) for name in _SPECIAL_USE)
    ):
        return None
    return f"{local}@{domain}"


def normalize_email(value: str) -> str:
    plain = _plain_email(value)
    if plain is not None:
        return plain
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid e-mail address: {exc}") from None
    return result.normalized


def normalize_phone(value: str) -> str:
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if not text.startswith("+"):
        raise ValueError(
            "has no country code; write it in international form, for example +14155552671"
        )
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"is not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("is not a valid phone number for its country")
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164


@lru_cache(maxsize=1024)
def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def check_timezone(value: str) -> str:
    if not _known_zone(value):
        raise ValueError("is not an IANA time zone (for example Europe/Berlin)")
    return value


def normalize_locale(value: str) -> str:
    if not _LOCALE.match(value):
        raise ValueError("is not a locale tag (for example en, ru-RU, pt-BR)")
    language, *rest = value.replace("_", "-").split("-")
    parts = [language.lower()]
    for part in rest:
        if len(part) == 2:
            parts.append(part.upper())
        elif len(part) == 4:
            parts.append(part.title())
        else:
            parts.append(part)
    return "-".join(parts)


def check_webhook_url(value: str) -> str:
    """The URL with its host in the one form the webhook channel sends to (UTS 46, A-labels,
    canonical IPv4), so what is saved, checked and requested is one host.

    Raises:
        ValueError: not http(s), no host, credentials, a bad port, a host IDNA refuses.
    """
    url = _webhook_urls.normalize(value)
    if len(url) > MAX_URL:  # A-labels are longer than the Unicode they spell
        raise ValueError(f"must be at most {MAX_URL} characters with its host in ASCII")
    return url


def is_private_host(host: str) -> bool:
    """Whether a literal address (in any spelling) is loopback, private, link-local or reserved.

    Host names are resolved and checked again at connect time by the webhook channel.
    """
    return _netguard.is_forbidden_host(host)


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    # One SSRF policy for save time and connect time: channels.netguard is pure stdlib.
    return _netguard.literal_ip(host)


# Built once: json.dumps with options builds an encoder per call, and this runs for every
# `data` and `attributes` of every request (a batch checks a thousand).
_ENCODE = json.JSONEncoder(allow_nan=False, ensure_ascii=False).encode


def check_attributes(value: dict[str, Any]) -> dict[str, Any]:
    # Walk before encoding: json.dumps and a recursive walk would overflow the stack on a
    # few hundred levels, and PostgreSQL refuses NUL and lone surrogates in JSONB.
    problem = _unstorable(value)
    if problem:
        raise ValueError(problem)
    try:
        encoded = _ENCODE(value)
    except ValueError:
        raise ValueError("must be JSON: NaN and Infinity are not allowed") from None
    if len(encoded.encode()) > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"must be at most {MAX_ATTRIBUTES_BYTES} bytes as JSON")
    return value


def _unstorable(value: Any) -> str | None:
    """Why `value` cannot be stored as JSON on every backend, or None; iterative, so any depth
    is safe."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list) and depth > MAX_ATTRIBUTE_DEPTH:
            return f"must nest at most {MAX_ATTRIBUTE_DEPTH} levels"
        if isinstance(item, dict):
            pending.extend((key, depth) for key in item)
            pending.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            pending.extend((v, depth + 1) for v in item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "must not contain NUL characters"
            if _SURROGATE.search(item):
                return "must be valid Unicode: lone surrogates (\\ud800-\\udfff) are not allowed"
    return None


def check_key(value: str) -> str:
    if not _KEY.fullmatch(value):  # `$` alone lets a trailing newline through
        raise ValueError(
            "must be 1-100 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit"
        )
    return value


Text255 = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(no_control_characters)
]
LongText = Annotated[
    str, StringConstraints(min_length=1, max_length=10_000), AfterValidator(no_control_characters)
]
ExternalId = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255, strip_whitespace=True),
    AfterValidator(no_control_characters),
    BeforeValidator(nfc_text),  # last, so it runs first
]
Email = Annotated[
    str, StringConstraints(max_length=320, strip_whitespace=True), AfterValidator(normalize_email)
]
Phone = Annotated[str, StringConstraints(max_length=40), AfterValidator(normalize_phone)]
TimeZone = Annotated[str, StringConstraints(max_length=64), AfterValidator(check_timezone)]
Locale = Annotated[str, StringConstraints(max_length=35), AfterValidator(normalize_locale)]
WebhookUrl = Annotated[
    str,
    StringConstraints(max_length=MAX_URL, strip_whitespace=True),
    AfterValidator(no_control_characters),
    AfterValidator(check_webhook_url),
]
Attributes = Annotated[dict[str, Any], AfterValidator(check_attributes)]
Key = Annotated[str, AfterValidator(check_key)]


def _blank_or_text(max_length: int) -> WithJsonSchema:
    """The input schema of an optional text: "" is accepted too, and means no value."""
    return WithJsonSchema(
        {"anyOf": [{"type": "string", "maxLength": max_length}, {"type": "null"}]},
        mode="validation",
    )


MaybeText = Annotated[Text255 | None, BeforeValidator(blank_to_none), _blank_or_text(255)]
MaybeLongText = Annotated[LongText | None, BeforeValidator(blank_to_none), _blank_or_text(10_000)]
MaybeEmail = Annotated[Email | None, BeforeValidator(blank_to_none)]
MaybePhone = Annotated[Phone | None, BeforeValidator(blank_to_none)]
MaybeLocale = Annotated[Locale | None, BeforeValidator(blank_to_none)]
MaybeWebhookUrl = Annotated[WebhookUrl | None, BeforeValidator(blank_to_none)]


_HEX_COLOR = re.compile(r"^#([0-9a-fA-F]{6})$")


def contrast_with_white(color: str) -> float:
    """WCAG 2.1's contrast ratio of white against `#rrggbb`.

    Raises:
        ValueError: not a #rrggbb colour.
    """
    found = _HEX_COLOR.match(color.strip())
    if found is None:
        raise ValueError("must be a colour written #rrggbb, e.g. #1d4ed8")
    channels = [int(found.group(1)[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    luminance = 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]
    return 1.05 / (luminance + 0.05)
