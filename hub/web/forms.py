"""Form protection without cookies: a signed, expiring token bound to the page's path.

The pages are reached by signed links and must work without cookies, so the CSRF token is
stateless: an HMAC of the form's path and the time, checked on POST (with the Origin header,
when the browser sends one). A form open longer than `MAX_AGE` is shown again, not obeyed.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

from fastapi import Request
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

MAX_AGE = 2 * 3600
MAX_FIELDS = 500


def first(form: dict[str, list[str]], name: str) -> str:
    """A field's first value, "" when absent."""
    values = form.get(name)
    return values[0] if values else ""


async def read_form(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body, every field as a list (checkboxes repeat); {} if unreadable."""
    body = (await request.body()).decode("utf-8", errors="replace")
    try:
        return parse_qs(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError:
        return {}


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def same_site(origin: str | None, host: str | None, ours: str) -> bool:
    """Whether a POST's Origin header is ours: the public URL's origin, or the host the
    request came to (a proxy may rewrite neither). No header, or "null" (sent by pages with
    a no-referrer policy), leaves the decision to the form token."""
    if not origin or origin in {"null", ours}:
        return True
    return host is not None and urlsplit(origin).netloc == host


class FormExpired(Exception):
    pass


class FormForged(Exception):
    pass


class FormGuard:
    def __init__(self, secrets: Sequence[str], public_url: str) -> None:
        self._signer = TimestampSigner(list(reversed(secrets)), salt="hub/csrf")
        self._origin = origin_of(public_url)

    def token(self, path: str) -> str:
        return self._signer.sign(path.encode()).decode()

    def check(self, path: str, token: str | None, origin: str | None, host: str | None) -> None:
        """Raises FormForged (another site, a token for another form) or FormExpired."""
        if not same_site(origin, host, self._origin):
            raise FormForged(f"a form posted from {origin}")
        if not token:
            raise FormForged("no form token")
        try:
            signed = self._signer.unsign(token, max_age=MAX_AGE)
        except SignatureExpired as exc:
            raise FormExpired from exc
        except BadSignature as exc:
            raise FormForged("a form token that is not ours") from exc
        if signed.decode(errors="replace") != path:
            raise FormForged("a form token for another page")
