"""The self-service pages as one router for the app: `/preferences/{token}`,
`/unsubscribe/{token}`, `/preferences` (send me my link), `/subscribe/{topic}` and
`/subscribe/confirm/{token}`, and `/preferences|unsubscribe/{token}/why` (why a person
unsubscribed, if they say), each flow in its own module.

GET and HEAD never change anything: mail filters fetch every link in a message. Changes are
POSTs, protected by a signed form token (no cookies needed), except the one-click unsubscribe
of RFC 8058, which mail clients POST with nothing but `List-Unsubscribe=One-Click`.
Answers never say whether an address or a contact exists.
"""

from __future__ import annotations

from fastapi import APIRouter

from hub.selfservice import link_request, preferences_page, reasons, subscribe, unsubscribe
from hub.selfservice.links import SelfService

__all__ = ["SelfService", "router"]

router = APIRouter(include_in_schema=False)
# The order the routes had when they shared one module; no two paths overlap.
for _flow in (preferences_page, unsubscribe, reasons, link_request, subscribe):
    router.include_router(_flow.router)
