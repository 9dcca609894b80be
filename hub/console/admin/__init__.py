"""The console's administration, for admins only: staff users (`users`), API keys (`keys`),
event endpoints (`endpoints`) and the audit log (`audit_log`). Viewers and marketers get 403
on every page here and see no link to it.

Every change goes through the service that owns it (hub.services.staff, apikeys,
event_endpoints), which writes the audit entry in the same transaction.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from hub.console.admin import audit_log, endpoints, keys, users
from hub.console.admin.common import AdminDep, admin_page

router = APIRouter(include_in_schema=False)


@router.get("/console/admin")
def administration(request: Request, staff: AdminDep) -> Response:
    return admin_page(request, "admin.html", "Administration", staff)


for _pages in (users, keys, endpoints, audit_log):
    router.include_router(_pages.router)
